// bnn2fpga HLS library: majority-pool reducer (IR MajorityPool2D: an average-pool of bipolar
// values followed by a sign), behind a SlidingWindow with SIMD = C and IB = 1.
//
//   in  : PIXELS*TAPS beats of C (+1 if MASKED) bits: one window tap of all C channels;
//         MASKED: bit C = 0 marks a padded position, which does not vote.
//   out : PIXELS beats of C bits: bit c = 1 iff sum over valid taps of (+-1) >= 0, i.e.
//         2*ones_c >= valid (a tie gives +1, as sign(0) does in QKeras and Larq).
// One flushable II=1 loop over the call's numReps frames, one tap per cycle; per channel a
// ubits(TAPS) counter and one comparator.
#ifndef BNN_MAJORITY_POOL_H
#define BNN_MAJORITY_POOL_H

#include "bnn_common.h"

template <unsigned C, unsigned TAPS, unsigned PIXELS, bool MASKED>
void MajorityReduce(hls::stream<ap_uint<C + (MASKED ? 1 : 0)> > &in,
                    hls::stream<ap_uint<C> > &out, unsigned numReps) {
  const unsigned ITER = PIXELS * TAPS;  // iterations per frame
  typedef ap_uint<bnn_ubits(TAPS) + 1> count_t;  // holds 2*TAPS
  count_t ones[C];
#pragma HLS ARRAY_PARTITION variable=ones complete dim=1
  count_t valid = 0;
  unsigned tap = 0;
  for (unsigned i = 0; i < numReps * ITER; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=ITER max=ITER
    const ap_uint<C + (MASKED ? 1 : 0)> x = in.read();
    const bool v = !MASKED || x[C] == 1;
    const count_t n = (tap == 0 ? count_t(0) : valid) + (v ? 1 : 0);
    valid = n;
    ap_uint<C> y = 0;
    for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
      const count_t k = (tap == 0 ? count_t(0) : ones[c]) + ((v && x[c] == 1) ? 1 : 0);
      ones[c] = k;
      y[c] = (2 * k >= n) ? 1 : 0;
    }
    if (tap == TAPS - 1) {
      out.write(y);
      tap = 0;
    } else {
      tap++;
    }
  }
}

#endif
