// bnn_majority_pool: majority-pool reducer behind a bnn_swu (IR MajorityPool2D: an
// average-pool of bipolar values followed by a sign), the RTL twin of the HLS
// MajorityReduce (hls/majority_pool.h).
//
// Parameters
//   C    channels; one beat carries one window tap of all C channels (the writer runs the
//        bnn_swu with SIMD = C, EB = 1)
//   KK   taps per window (KH*KW)
// Streams
//   s: from bnn_swu, KK beats per output pixel (tap-major); s_tuser = 0 marks a padded
//      tap, which does not vote (Keras 'same' average pooling divides by the valid count)
//   m: one beat of C bits per output pixel: bit c = 1 iff the sum over the valid taps of
//      the +-1 values is >= 0, i.e. 2*ones_c >= valid (a tie gives +1, as sign(0) does in
//      QKeras and Larq)
//
// One tap per cycle: per channel a clog2(KK+1)-bit count of +1 votes, one shared count of
// valid taps, and a comparator on the last tap.  The output register and handshake are
// those of bnn_pool (one enable: output free or consumed).
module bnn_majority_pool #(
    parameter int C = 1,
    parameter int KK = 4
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic [C-1:0] s_tdata,
    input  logic         s_tuser,
    input  logic         s_tvalid,
    output logic         s_tready,
    output logic [C-1:0] m_tdata,
    output logic         m_tvalid,
    input  logic         m_tready
);
  localparam int KW_ = KK > 1 ? $clog2(KK) : 1;
  localparam int NW = $clog2(KK + 1);  // counts up to KK

  logic [KW_-1:0] tap;
  logic [NW-1:0] valid;     // valid taps of this window so far
  logic [NW-1:0] ones[C];   // +1 votes per channel so far

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;
  wire fire = s_tvalid && s_tready;
  wire first_tap = tap == '0;
  wire last_tap = tap == KW_'(KK - 1);

  // counts including this tap, and the majority they give
  logic [NW-1:0] valid_n;
  logic [NW-1:0] ones_n[C];
  logic [C-1:0] vote;
  always_comb begin
    valid_n = (first_tap ? '0 : valid) + NW'(s_tuser);
    for (int c = 0; c < C; c++) begin
      ones_n[c] = (first_tap ? '0 : ones[c]) + NW'(s_tuser && s_tdata[c]);
      vote[c] = {ones_n[c], 1'b0} >= {1'b0, valid_n};  // 2*ones >= valid
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) tap <= '0;
    else if (fire) tap <= last_tap ? '0 : tap + 1'b1;
  end

  always_ff @(posedge clk) begin
    if (fire) begin
      valid <= valid_n;
      for (int c = 0; c < C; c++) ones[c] <= ones_n[c];
    end
    if (en) m_tdata <= vote;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= fire && last_tap;
  end
endmodule
