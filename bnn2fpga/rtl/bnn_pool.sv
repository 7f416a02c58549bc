// bnn_pool: max-pool reducer behind a bnn_swu: folds the KK = KH*KW taps of each output
// pixel into one beat.  Padded taps (s_tuser = 0) are ignored (Keras 'same' semantics).
//
// Parameters
//   SIMD, EB   elements per beat, bits per element (the writer uses SIMD = C: one pixel)
//   CG         channel groups per pixel (C / SIMD)
//   KK         taps per window
//   SIGNED     1 for signed (accumulator) codes
//   MIN_MASK   bit c set: channel c takes the minimum (AND for bits) instead of the max
//              (OR): a max-pool that stood before a negative-scale BatchNorm
// Streams: s from bnn_swu (tap-major, then channel group); m: CG beats per output pixel.
module bnn_pool #(
    parameter int SIMD = 1,
    parameter int EB = 1,
    parameter int CG = 1,
    parameter int KK = 4,
    parameter int SIGNED = 0,
    parameter logic [SIMD*CG-1:0] MIN_MASK = '0
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [SIMD*EB-1:0] s_tdata,
    input  logic               s_tuser,
    input  logic               s_tvalid,
    output logic               s_tready,
    output logic [SIMD*EB-1:0] m_tdata,
    output logic               m_tvalid,
    input  logic               m_tready
);
  localparam int DW = SIMD * EB;
  localparam int KW_ = KK > 1 ? $clog2(KK) : 1;
  localparam int CGW = CG > 1 ? $clog2(CG) : 1;

  logic [KW_-1:0] tap;
  logic [CGW-1:0] cg;
  logic [DW-1:0] acc[CG];
  logic [CG-1:0] seen;  // a valid tap of this window has been folded into acc[cg]

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;
  wire fire = s_tvalid && s_tready;
  wire last_tap = tap == KW_'(KK - 1);

  // per lane: max (OR) or min (AND) of the kept value and the new tap
  logic [DW-1:0] folded, result;
  always_comb begin
    for (int l = 0; l < SIMD; l++) begin
      logic [EB-1:0] a, b;
      logic a_larger, is_min;
      a = acc[cg][l*EB+:EB];
      b = s_tdata[l*EB+:EB];
      is_min = MIN_MASK[int'(cg)*SIMD+l];
      a_larger = SIGNED != 0 ? $signed(a) > $signed(b) : a > b;
      folded[l*EB+:EB] = (a_larger != is_min) ? a : b;
    end
    if (!s_tuser) result = acc[cg];
    else if (!seen[cg]) result = s_tdata;
    else result = folded;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tap <= '0;
      cg <= '0;
      seen <= '0;
    end else if (fire) begin
      cg <= (cg == CGW'(CG - 1)) ? '0 : cg + 1'b1;
      if (cg == CGW'(CG - 1)) tap <= last_tap ? '0 : tap + 1'b1;
      seen[cg] <= !last_tap && (seen[cg] || s_tuser);
    end
  end

  always_ff @(posedge clk) begin
    if (fire) acc[cg] <= result;
    if (en) m_tdata <= result;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= fire && last_tap;
  end
endmodule
