// bnn2fpga HLS library: per-channel fixed-point affine (IR FixedAffine: BatchNorm on a real
// tensor, bias, ReLU/PReLU, RPReLU), PE lanes per beat, as rtl/bnn_fixed_affine.sv.
//
//   u = x + add_in[c];  p = u >= 0 ? u * mul_pos[c] + add_out[c] : u * mul_neg[c] + add_neg[c]
//   y = saturate_OB(round_shift(p, SHIFT))     round half up: (p + 2^(SHIFT-1)) >> SHIFT
//
//   in  : BEATS beats of PE IB-bit codes per frame (signed; unsigned where IN_SIGNED = 0),
//         lane p at bits [p*IB, (p+1)*IB);
//         beat nf of a pixel (NF = C/PE beats) holds channels nf*PE .. nf*PE + PE - 1.
//   out : the same beats of PE signed OB-bit codes.
//   consts[PE][NF]: words {[add_neg (AOW, where AO2),] add_out (AOW), add_in (AIW), mul_neg
//         (MW), mul_pos (MW)}, mul_pos in the low bits (bnn2fpga.packing.pack_fields); without
//         AO2, add_out serves both sides.  UW, PW: the bits of u and of
//         p + 2^(SHIFT-1), sized by the plan from the constants (no overflow before the
//         saturation).
// One flattened II=1 loop over numReps frames (issue-14 convention).
#ifndef BNN_FIXED_AFFINE_H
#define BNN_FIXED_AFFINE_H

#include "bnn_common.h"

template <unsigned PE, unsigned NF, unsigned IB, unsigned OB, unsigned MW, unsigned AIW,
          unsigned AOW, unsigned AO2, unsigned UW, unsigned PW, unsigned SHIFT, unsigned BEATS,
          unsigned IN_SIGNED = 1>
void FixedAffineUnit(hls::stream<ap_uint<PE * IB> > &in, hls::stream<ap_uint<PE * OB> > &out,
                     const ap_uint<2 * MW + AIW + (AO2 ? 2 : 1) * AOW> consts[PE][NF],
                     unsigned numReps) {
  const unsigned CW = 2 * MW + AIW + (AO2 ? 2 : 1) * AOW;
  const ap_int<PW> half = SHIFT > 0 ? ap_int<PW>(ap_int<PW>(1) << (SHIFT > 0 ? SHIFT - 1 : 0))
                                    : ap_int<PW>(0);
  const ap_int<PW> hi = ap_int<PW>((1LL << (OB - 1)) - 1);
  const ap_int<PW> lo = ap_int<PW>(-(1LL << (OB - 1)));
  unsigned nf = 0;
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_uint<PE * IB> x = in.read();
    ap_uint<PE * OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      const ap_uint<CW> k = consts[pe][nf];
      const ap_int<MW> mul_pos = k(MW - 1, 0);
      const ap_int<MW> mul_neg = k(2 * MW - 1, MW);
      const ap_int<AIW> add_in = k(2 * MW + AIW - 1, 2 * MW);
      const ap_int<AOW> add_out = k(2 * MW + AIW + AOW - 1, 2 * MW + AIW);
      const ap_int<AOW> add_neg = AO2 ? ap_int<AOW>(k(CW - 1, CW - AOW)) : add_out;
      const ap_uint<IB> xb = x(pe * IB + IB - 1, pe * IB);
      const ap_int<IB + 1> xv =
          IN_SIGNED ? ap_int<IB + 1>(ap_int<IB>(xb)) : ap_int<IB + 1>(xb);
      const ap_int<UW> u = ap_int<UW>(xv) + ap_int<UW>(add_in);
      const ap_int<MW> m = u >= 0 ? mul_pos : mul_neg;
      const ap_int<UW + MW> prod = u * m;
      const ap_int<PW> sum = ap_int<PW>(prod) + ap_int<PW>(u >= 0 ? add_out : add_neg) + half;
      const ap_int<PW> r = sum >> SHIFT;
      const ap_int<OB> v = r > hi ? ap_int<OB>(hi) : r < lo ? ap_int<OB>(lo) : ap_int<OB>(r);
      y(pe * OB + OB - 1, pe * OB) = ap_uint<OB>(v);
    }
    out.write(y);
    nf = (nf == NF - 1) ? 0u : nf + 1;
  }
}

#endif
