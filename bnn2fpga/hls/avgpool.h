// bnn2fpga HLS library: global average pooling of fixed-point codes (IR FixedAvgPool with
// global_pool), as rtl/bnn_global_avgpool.sv: a running per-channel sum over the HW pixels
// of a frame, then y = saturate_OB(round_shift(sum * MUL, SHIFT)) (round half up).
//
//   in  : HW beats a frame, one pixel of C signed IB-bit codes (lane c at [c*IB, (c+1)*IB)).
//   out : one beat a frame of C signed OB-bit codes.
//   SW, MW, PW: sum, multiplier and product bits, sized by the plan (no overflow before the
//   saturation).
// One flattened II=1 loop over numReps frames (issue-14 convention).
#ifndef BNN_AVGPOOL_H
#define BNN_AVGPOOL_H

#include "bnn_common.h"

template <unsigned C, unsigned HW, unsigned IB, unsigned OB, unsigned SW, unsigned MUL,
          unsigned MW, unsigned PW, unsigned SHIFT>
void GlobalAvgPool(hls::stream<ap_uint<C * IB> > &in, hls::stream<ap_uint<C * OB> > &out,
                   unsigned numReps) {
  const ap_int<PW> half = SHIFT > 0 ? ap_int<PW>(ap_int<PW>(1) << (SHIFT > 0 ? SHIFT - 1 : 0))
                                    : ap_int<PW>(0);
  const ap_int<PW> hi = ap_int<PW>((1LL << (OB - 1)) - 1);
  const ap_int<PW> lo = ap_int<PW>(-(1LL << (OB - 1)));
  const ap_int<MW> m = MUL;
  ap_int<SW> acc[C];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
  unsigned px = 0;
  for (unsigned i = 0; i < numReps * HW; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=HW max=HW
    const ap_uint<C * IB> x = in.read();
    ap_uint<C * OB> y = 0;
    for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
      const ap_int<IB> xv = x(c * IB + IB - 1, c * IB);
      const ap_int<SW> total = (px == 0 ? ap_int<SW>(0) : acc[c]) + ap_int<SW>(xv);
      acc[c] = total;
      const ap_int<SW + MW> prod = total * m;
      const ap_int<PW> r = (ap_int<PW>(prod) + half) >> SHIFT;
      const ap_int<OB> v = r > hi ? ap_int<OB>(hi) : r < lo ? ap_int<OB>(lo) : ap_int<OB>(r);
      y(c * OB + OB - 1, c * OB) = ap_uint<OB>(v);
    }
    if (px == HW - 1) out.write(y);
    px = (px == HW - 1) ? 0u : px + 1;
  }
}

#endif
