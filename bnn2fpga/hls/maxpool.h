// bnn2fpga HLS library: max-pool reducer, behind a SlidingWindow with SIMD = C.
//
//   in  : PIXELS*TAPS beats of C*IB (+1 if MASKED) bits: one window tap of all C channels
//         (lane c at bits [c*IB, (c+1)*IB)); MASKED: bit C*IB = 0 marks a padded position,
//         which is ignored (Keras 'same' max-pool).
//   out : PIXELS beats of C*IB bits, one pooled pixel; numReps frames per call.
//   min_mask: bit c set = channel c takes the minimum instead of the maximum (IR
//         MaxPool2D.min_channels: a max-pool that stood before a negative BatchNorm scale).
// Bits pool as codes: max = OR, min = AND.  Integers: unsigned (uint codes) or two's
// complement (SIGNED, accumulators).  One flushable II=1 loop over the call's frames, one tap
// per cycle; C comparators.
#ifndef BNN_MAXPOOL_H
#define BNN_MAXPOOL_H

#include "bnn_common.h"

template <unsigned IB, bool SIGNED>
ap_uint<IB> PoolCombine(const ap_uint<IB> &a, const ap_uint<IB> &b, bool take_min) {
#pragma HLS INLINE
  if (IB == 1) return take_min ? ap_uint<IB>(a & b) : ap_uint<IB>(a | b);
  const bool a_less = SIGNED ? (ap_int<IB>(a) < ap_int<IB>(b)) : (a < b);
  return (a_less == take_min) ? a : b;
}

template <unsigned C, unsigned IB, bool SIGNED, unsigned TAPS, unsigned PIXELS, bool MASKED>
void PoolReduce(hls::stream<ap_uint<C * IB + (MASKED ? 1 : 0)> > &in,
                hls::stream<ap_uint<C * IB> > &out, const ap_uint<C> &min_mask,
                unsigned numReps) {
  const unsigned ITER = PIXELS * TAPS;  // iterations per frame
  ap_uint<C * IB> acc = 0;
  bool seen = false;  // a valid tap of the current window has been taken
  unsigned tap = 0;
  for (unsigned i = 0; i < numReps * ITER; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=ITER max=ITER
    const ap_uint<C * IB + (MASKED ? 1 : 0)> x = in.read();
    const bool valid = !MASKED || x[C * IB] == 1;
    const bool first = (tap == 0) || !seen;
    ap_uint<C * IB> next = acc;
    for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
      const ap_uint<IB> a = acc(c * IB + IB - 1, c * IB);
      const ap_uint<IB> b = x(c * IB + IB - 1, c * IB);
      next(c * IB + IB - 1, c * IB) = first ? b : PoolCombine<IB, SIGNED>(a, b, min_mask[c] == 1);
    }
    if (valid) acc = next;
    seen = (tap != 0 && seen) || valid;
    if (tap == TAPS - 1) {
      out.write(acc);
      tap = 0;
    } else {
      tap++;
    }
  }
}

#endif
