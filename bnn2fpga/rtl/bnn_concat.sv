// bnn_concat: channel concatenation of two streams, one pixel per beat on every port: the
// output beat is {s1, s0} (input 0's channels in the low lanes, then input 1's).  A beat is
// taken from both inputs at once; output register (delay 1).
module bnn_concat #(
    parameter int W0 = 8,
    parameter int W1 = 8
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [W0-1:0]      s0_tdata,
    input  logic               s0_tvalid,
    output logic               s0_tready,
    input  logic [W1-1:0]      s1_tdata,
    input  logic               s1_tvalid,
    output logic               s1_tready,
    output logic [W0+W1-1:0]   m_tdata,
    output logic               m_tvalid,
    input  logic               m_tready
);
  logic en;
  assign en = !m_tvalid || m_tready;
  assign s0_tready = en && s1_tvalid;
  assign s1_tready = en && s0_tvalid;
  wire fire = s0_tvalid && s1_tvalid && en;

  always_ff @(posedge clk) begin
    if (en) m_tdata <= {s1_tdata, s0_tdata};
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= fire;
  end
endmodule
