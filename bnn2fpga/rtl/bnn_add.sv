// bnn_add: fixed-point add of two streams (a residual join), PE lanes per beat.  Per lane,
// as bnn2fpga/fixed.py defines: input k (IBk-bit two's complement) is aligned exactly by
// a left shift of LSHk (to the largest input frac), the two are summed, the sum brought to
// the output frac with one shift, rounding half up, (v + 2^(RSH-1)) >>> RSH (RSH < 0: an
// exact left shift), and saturated to OB bits.  SW: the plan's width of the aligned sum.
// A beat is taken from both inputs at once; output register (delay 1).
module bnn_add #(
    parameter int PE = 1,
    parameter int IB0 = 8,
    parameter int IB1 = 8,
    parameter int LSH0 = 0,
    parameter int LSH1 = 0,
    parameter int RSH = 0,
    parameter int OB = 8,
    parameter int SW = 10
) (
    input  logic                clk,
    input  logic                rst_n,
    input  logic [PE*IB0-1:0]   s0_tdata,
    input  logic                s0_tvalid,
    output logic                s0_tready,
    input  logic [PE*IB1-1:0]   s1_tdata,
    input  logic                s1_tvalid,
    output logic                s1_tready,
    output logic [PE*OB-1:0]    m_tdata,
    output logic                m_tvalid,
    input  logic                m_tready
);
  localparam int RS = RSH > 0 ? RSH : 0;   // right shift (rounding)
  localparam int LS = RSH < 0 ? -RSH : 0;  // left shift (exact)
  localparam logic signed [SW-1:0] HALF = RS > 0 ? SW'(1) <<< (RS > 0 ? RS - 1 : 0) : '0;
  localparam logic signed [SW-1:0] HI = SW'((1 << (OB - 1)) - 1);
  localparam logic signed [SW-1:0] LO = -HI - SW'(1);

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s0_tready = en && s1_tvalid;
  assign s1_tready = en && s0_tvalid;
  wire fire = s0_tvalid && s1_tvalid && en;

  logic [PE*OB-1:0] result;
  always_comb begin
    for (int l = 0; l < PE; l++) begin
      logic signed [SW-1:0] a, b, v;
      a = SW'($signed(s0_tdata[l*IB0+:IB0])) <<< LSH0;
      b = SW'($signed(s1_tdata[l*IB1+:IB1])) <<< LSH1;
      v = (((a + b) <<< LS) + HALF) >>> RS;
      result[l*OB+:OB] = v > HI ? OB'(HI) : v < LO ? OB'(LO) : OB'(v);
    end
  end

  always_ff @(posedge clk) begin
    if (en) m_tdata <= result;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= fire;
  end
endmodule
