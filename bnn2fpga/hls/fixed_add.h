// bnn2fpga HLS library: fixed-point add of two streams (the plan's "add" unit, a residual
// join), as bnn2fpga/fixed.py defines it, lane for lane the RTL's bnn_add:
//
//   in0 : BEATS beats of PE lanes of IB0-bit two's-complement codes (in1: IB1 bits);
//   out : BEATS beats of PE lanes of OB bits.
//   Per lane: a = in0 << LSH0, b = in1 << LSH1 (exact alignment to the largest input
//   frac), v = (a + b) shifted to the output frac by RSH, rounding half up,
//   (v + 2^(RSH-1)) >> RSH (RSH < 0: an exact left shift), then saturated to OB bits.
//   SW: the plan's width of the aligned sum (no overflow by construction).
// numReps frames per call, as one flattened II=1 loop.
#ifndef BNN_FIXED_ADD_H
#define BNN_FIXED_ADD_H

#include "bnn_common.h"

template <unsigned PE, unsigned IB0, unsigned IB1, unsigned LSH0, unsigned LSH1, int RSH,
          unsigned OB, unsigned SW, unsigned BEATS>
void FixedAdd(hls::stream<ap_uint<PE * IB0> > &in0, hls::stream<ap_uint<PE * IB1> > &in1,
              hls::stream<ap_uint<PE * OB> > &out, unsigned numReps) {
  const unsigned RS = RSH > 0 ? unsigned(RSH) : 0u;   // rounding right shift
  const unsigned LS = RSH < 0 ? unsigned(-RSH) : 0u;  // exact left shift
  const ap_int<SW> half = RS > 0 ? ap_int<SW>(ap_int<SW>(1) << (RS > 0 ? RS - 1 : 0u))
                                 : ap_int<SW>(0);
  const ap_int<SW> hi = ap_int<SW>((ap_int<SW>(1) << (OB - 1)) - 1);
  const ap_int<SW> lo = ap_int<SW>(-hi - 1);
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_uint<PE * IB0> x0 = in0.read();
    const ap_uint<PE * IB1> x1 = in1.read();
    ap_uint<PE * OB> y = 0;
    for (unsigned l = 0; l < PE; l++) {
#pragma HLS UNROLL
      const ap_int<SW> a = ap_int<SW>(ap_int<IB0>(x0(l * IB0 + IB0 - 1, l * IB0))) << LSH0;
      const ap_int<SW> b = ap_int<SW>(ap_int<IB1>(x1(l * IB1 + IB1 - 1, l * IB1))) << LSH1;
      const ap_int<SW> s = ap_int<SW>(ap_int<SW>(a + b) << LS);
      const ap_int<SW> v = ap_int<SW>(ap_int<SW>(s + half) >> RS);
      const ap_int<SW> c = v > hi ? hi : v < lo ? lo : v;
      y(l * OB + OB - 1, l * OB) = ap_uint<OB>(c(OB - 1, 0));
    }
    out.write(y);
  }
}

#endif
