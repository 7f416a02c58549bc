// bnn_fork: one AXI stream copied to two (a tensor read by two layers).  The beat is held
// in an output register with a pending flag per output; each output takes it when it is
// ready, and the next beat enters once every output has taken the current one (or takes
// it in this cycle).  One beat per cycle while both outputs keep up; delay 1.
//
// Parameters
//   W   data bits
//   N   outputs (2: the plan builds a tree of forks for more readers)
module bnn_fork #(
    parameter int W = 8,
    parameter int N = 2
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic [W-1:0] s_tdata,
    input  logic         s_tvalid,
    output logic         s_tready,
    output logic [W-1:0] m0_tdata,
    output logic         m0_tvalid,
    input  logic         m0_tready,
    output logic [W-1:0] m1_tdata,
    output logic         m1_tvalid,
    input  logic         m1_tready
);
  logic [W-1:0] data;
  logic [1:0] pend;  // output k has not taken the held beat yet
  logic [1:0] taken;

  assign taken = {m1_tready, m0_tready};
  assign s_tready = (pend & ~taken) == 2'b00;
  assign m0_tdata = data;
  assign m1_tdata = data;
  assign m0_tvalid = pend[0];
  assign m1_tvalid = pend[1];

  wire fire = s_tvalid && s_tready;

  always_ff @(posedge clk) begin
    if (fire) data <= s_tdata;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) pend <= 2'b00;
    else if (fire) pend <= 2'b11;
    else pend <= pend & ~taken;
  end

  logic unused_n;
  assign unused_n = &{1'b0, N[0]};
endmodule
