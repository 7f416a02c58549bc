// bnn_fixed_affine: per-channel fixed-point affine with a sign-dependent slope (IR
// FixedAffine: BatchNorm on a real tensor, bias, ReLU/PReLU, RPReLU), PE lanes per beat.
//
//   u = x + add_in[c];  p = u >= 0 ? u * mul_pos[c] + add_out[c] : u * mul_neg[c] + add_neg[c]
//   y = saturate_OB(round_shift(p, SHIFT))      round half up: (p + 2^(SHIFT-1)) >>> SHIFT
//
// Parameters
//   PE, NF     lanes per beat, channel folds (C = NF * PE; beat nf of a pixel holds
//              channels nf*PE .. nf*PE + PE - 1, lane p = channel nf*PE + p)
//   IB, OB     input / output code bits (two's complement; unsigned input where IN_SIGNED = 0)
//   IN_SIGNED  1: the input codes are signed (fixed/int); 0: unsigned (uint codes)
//   MW         multiplier bits (IR mul_bits); AIW, AOW: add_in / add_out (add_neg) bits
//   AO2        1: a second offset add_neg per channel for u < 0; 0: add_out on both sides
//   UW, PW     bits of u and of p + 2^(SHIFT-1): the plan sizes them from the constants, so
//              nothing here can overflow before the saturation
//   SHIFT      rounding shift (>= 0)
//   CONST_FILE prefix of CONST_FILE_pe<ppp>.mem: NF words of {[add_neg,] add_out, add_in,
//              mul_neg, mul_pos}, mul_pos in the low MW bits (bnn2fpga.packing.pack_fields)
// Streams: s PE codes of IB bits per beat, m PE codes of OB bits per beat, NF beats a pixel.
//
// Pipeline (one enable, as bnn_mvtu: backpressure stalls both stages): stage 1 registers u
// and the selected multiplier (a DSP's A/B registers), stage 2 multiplies, adds, rounds
// and saturates into the output register.
module bnn_fixed_affine #(
    parameter int PE = 1,
    parameter int NF = 1,
    parameter int IB = 8,
    parameter int IN_SIGNED = 1,
    parameter int OB = 8,
    parameter int MW = 4,
    parameter int AIW = 2,
    parameter int AOW = 2,
    parameter int AO2 = 0,
    parameter int UW = 9,
    parameter int PW = 14,
    parameter int SHIFT = 0,
    parameter CONST_FILE = "constants"
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [PE*IB-1:0]   s_tdata,
    input  logic               s_tvalid,
    output logic               s_tready,
    output logic [PE*OB-1:0]   m_tdata,
    output logic               m_tvalid,
    input  logic               m_tready
);
  localparam int CW = 2 * MW + AIW + (AO2 != 0 ? 2 : 1) * AOW;
  localparam int NFW = NF > 1 ? $clog2(NF) : 1;
  localparam logic signed [PW-1:0] HALF = SHIFT > 0 ? PW'(1) <<< (SHIFT > 0 ? SHIFT - 1 : 0) : '0;
  localparam logic signed [PW-1:0] HI = PW'((1 << (OB - 1)) - 1);
  localparam logic signed [PW-1:0] LO = -(PW'(1 << (OB - 1)));

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;
  wire fire = s_tvalid && en;

  logic [NFW-1:0] nf;
  logic v1;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      nf <= '0;
      v1 <= 1'b0;
      m_tvalid <= 1'b0;
    end else begin
      if (fire) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
      if (en) begin
        v1 <= s_tvalid;
        m_tvalid <= v1;
      end
    end
  end

  for (genvar p = 0; p < PE; p++) begin : g_pe
    localparam logic [23:0] IDX = {8'(48 + p / 100 % 10), 8'(48 + p / 10 % 10), 8'(48 + p % 10)};
    logic [CW-1:0] cmem[NF];
    initial $readmemh({CONST_FILE, "_pe", IDX, ".mem"}, cmem);

    wire [CW-1:0] k = cmem[nf];
    wire signed [MW-1:0] mul_pos = k[0+:MW];
    wire signed [MW-1:0] mul_neg = k[MW+:MW];
    wire signed [AIW-1:0] add_in = k[2*MW+:AIW];
    wire signed [AOW-1:0] add_out = k[2*MW+AIW+:AOW];
    wire signed [AOW-1:0] add_neg = AO2 != 0 ? k[CW-AOW+:AOW] : add_out;
    wire [IB-1:0] xb = s_tdata[p*IB+:IB];
    wire signed [IB:0] x = {IN_SIGNED != 0 ? xb[IB-1] : 1'b0, xb};  // sign- or zero-extended
    wire signed [UW-1:0] u0 = UW'(x) + UW'(add_in);

    logic signed [UW-1:0] u1;
    logic signed [MW-1:0] m1;
    logic signed [AOW-1:0] a1;
    always_ff @(posedge clk) begin
      if (en) begin
        u1 <= u0;
        m1 <= u0 >= 0 ? mul_pos : mul_neg;
        a1 <= u0 >= 0 ? add_out : add_neg;
      end
    end

    // the full product; where PW is narrower its top bits are copies of the sign (PW holds
    // every product of these constants), so only PW of them are read
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [UW+MW-1:0] prod;
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [PW-1:0] sum, rounded;
    assign prod = u1 * m1;
    assign sum = PW'(prod) + PW'(a1) + HALF;
    assign rounded = sum >>> SHIFT;
    always_ff @(posedge clk) begin
      if (en && v1) begin
        m_tdata[p*OB+:OB] <= rounded > HI ? OB'(HI) : rounded < LO ? OB'(LO) : OB'(rounded);
      end
    end
  end
endmodule
