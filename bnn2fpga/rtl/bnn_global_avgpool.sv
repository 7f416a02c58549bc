// bnn_global_avgpool: average pooling of fixed-point codes (IR FixedAvgPool): a running
// per-channel sum over HW consecutive beats, then y = saturate_OB(round_shift(sum * MUL,
// SHIFT)) (round half up), one output beat per HW input beats.  A global pool sums a frame's
// HW pixels; a windowed pool sits behind an unpadded bnn_swu (SIMD = C) and sums each
// output pixel's HW = KH*KW taps.
//
// Parameters
//   C, HW      channels (lanes of a beat: one pixel or tap per beat), beats per sum
//   IB, OB     input / output code bits (signed)
//   SW         sum bits (holds HW * 2^(IB-1)); MUL, MW: the constant multiplier and its
//              signed bits; PW: bits of sum * MUL + 2^(SHIFT-1) (sized by the plan)
//   SHIFT      rounding shift
// The sums are registers (C x SW bits); the last beat of a sum is added, scaled, rounded and
// saturated into the output register in the cycle it arrives.
module bnn_global_avgpool #(
    parameter int C = 1,
    parameter int HW = 4,
    parameter int IB = 8,
    parameter int OB = 8,
    parameter int SW = 11,
    parameter int MUL = 1,
    parameter int MW = 2,
    parameter int PW = 14,
    parameter int SHIFT = 0
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [C*IB-1:0]  s_tdata,
    input  logic             s_tvalid,
    output logic             s_tready,
    output logic [C*OB-1:0]  m_tdata,
    output logic             m_tvalid,
    input  logic             m_tready
);
  localparam int PXW = HW > 1 ? $clog2(HW) : 1;
  localparam logic signed [PW-1:0] HALF = SHIFT > 0 ? PW'(1) <<< (SHIFT > 0 ? SHIFT - 1 : 0) : '0;
  localparam logic signed [PW-1:0] HI = PW'((1 << (OB - 1)) - 1);
  localparam logic signed [PW-1:0] LO = -(PW'(1 << (OB - 1)));
  localparam logic signed [MW-1:0] M = MW'(MUL);

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;
  wire fire = s_tvalid && en;

  logic [PXW-1:0] px;
  wire first = px == '0;
  wire last = px == PXW'(HW - 1);
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      px <= '0;
      m_tvalid <= 1'b0;
    end else begin
      if (fire) px <= last ? '0 : px + 1'b1;
      if (en) m_tvalid <= fire && last;
    end
  end

  for (genvar c = 0; c < C; c++) begin : g_ch
    logic signed [SW-1:0] acc;
    wire signed [IB-1:0] x = s_tdata[c*IB+:IB];
    wire signed [SW-1:0] total = (first ? '0 : acc) + SW'(x);
    always_ff @(posedge clk) begin
      if (fire) acc <= total;
    end
    // the product; where PW is narrower its top bits are copies of the sign
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [SW+MW-1:0] prod;
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [PW-1:0] rounded;
    assign prod = total * M;
    assign rounded = (PW'(prod) + HALF) >>> SHIFT;
    always_ff @(posedge clk) begin
      if (fire && last) begin
        m_tdata[c*OB+:OB] <= rounded > HI ? OB'(HI) : rounded < LO ? OB'(LO) : OB'(rounded);
      end
    end
  end
endmodule
