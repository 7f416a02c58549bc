// bnn_fifo: AXI-stream FIFO between units (registered TREADY/TVALID: it cuts the
// combinational handshake paths from one unit to the next).
//
// Parameters
//   W      data bits
//   DEPTH  entries (>= 2 for one beat per cycle); the writer sizes it from the plan
//          (plan.input_fifo_depth: one input vector in front of a dense MVTU)
module bnn_fifo #(
    parameter int W = 8,
    parameter int DEPTH = 2
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic [W-1:0] s_tdata,
    input  logic         s_tvalid,
    output logic         s_tready,
    output logic [W-1:0] m_tdata,
    output logic         m_tvalid,
    input  logic         m_tready
);
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);

  logic [W-1:0] mem[DEPTH];
  logic [AW-1:0] rd, wr;
  logic [CW-1:0] count;

  assign s_tready = count != CW'(DEPTH);
  assign m_tvalid = count != '0;
  assign m_tdata = mem[rd];

  wire push = s_tvalid && s_tready;
  wire pop = m_tvalid && m_tready;

  always_ff @(posedge clk) begin
    if (push) mem[wr] <= s_tdata;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      rd <= '0;
      wr <= '0;
      count <= '0;
    end else begin
      if (push) wr <= (wr == AW'(DEPTH - 1)) ? '0 : wr + 1'b1;
      if (pop) rd <= (rd == AW'(DEPTH - 1)) ? '0 : rd + 1'b1;
      count <= count + CW'(push) - CW'(pop);
    end
  end
endmodule
