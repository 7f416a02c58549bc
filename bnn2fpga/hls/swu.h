// bnn2fpga HLS library: sliding-window unit (SWU), the im2col generator in front of a conv's
// MVTU (and of a max-pool's reducer).
//
//   in  : H*W*CG beats of SIMD*IB bits, raster order (row, column, channel group fastest);
//         CG = C/SIMD, lane i of a beat = channel g*SIMD + i at bits [i*IB, (i+1)*IB).
//   out : OH*OW*KH*KW*CG beats of SIMD*IB (+1 if MASKED) bits: for each output pixel in raster
//         order, its window in (ky, kx, channel group) order = the MVTU's fan-in order.
//         A tap outside the image (padding) is, exactly as the IR's Conv2D.pad says:
//           MASKED     : the valid flag (bit SIMD*IB) is 0, data 0   (bipolar, pad "zero";
//                        max-pool: padded positions are ignored)
//           not MASKED : every lane holds the code PAD, and the flag bit is absent
//                        (integer pad code; uint/unipolar pad "zero" = code 0)
//         Inside taps of a MASKED stream have the flag 1.  SIMD divides C, so a beat never
//         straddles two taps and one flag per beat suffices.
//
// Micro-architecture: one RAM holding a ring of R = KH + SH input rows, R*W*CG beats
// (1 read + 1 write port).  Phase 0 reads the rows output row 0 needs; phase p = 1..OH emits
// output row p-1 while it reads the (<= SH) rows output row p adds; the last phase also drains
// input rows no window uses ('valid' remainders).  Any padding works, also windows made only
// of padding.  A phase is one II=1 loop of max(emits, reads) cycles: one read and one emit per
// cycle.  The rows being read never alias the rows being emitted (R = KH + SH), and the
// pipeline drains between phases, so the RAM carries no loop dependence.
#ifndef BNN_SWU_H
#define BNN_SWU_H

#include "bnn_common.h"

template <unsigned H, unsigned W, unsigned C, unsigned SIMD, unsigned IB,
          unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned OH, unsigned OW, bool MASKED, unsigned PAD>
void SlidingWindow(hls::stream<ap_uint<SIMD * IB> > &in,
                   hls::stream<ap_uint<SIMD * IB + (MASKED ? 1 : 0)> > &out) {
  static_assert(C % SIMD == 0, "SIMD must divide the input channels");
  const unsigned CG = C / SIMD;
  const unsigned ROW = W * CG;           // beats per input row
  const unsigned R = KH + SH;            // rows in the ring
  const unsigned EMITS = OW * KH * KW * CG;
  typedef ap_uint<SIMD * IB> beat_t;
  typedef ap_uint<SIMD * IB + (MASKED ? 1 : 0)> obeat_t;

  beat_t buf[R * ROW];

  beat_t pad_beat = 0;  // every lane = PAD
  for (unsigned i = 0; i < SIMD; i++) {
#pragma HLS UNROLL
    pad_beat(i * IB + IB - 1, i * IB) = ap_uint<IB>(PAD);
  }

  unsigned loaded = 0;                   // input rows read so far
  unsigned wslot = 0, wpos = 0;          // ring slot and beat of the next read
  unsigned base = (R - PT % R) % R;      // ring slot of input row oy*SH - PT
  int top = -int(PT);                    // input row of ky = 0 for the output row emitted

  for (unsigned p = 0; p <= OH; p++) {
#pragma HLS LOOP_FLATTEN off
    // rows needed once this phase ends: those of output row p (all rows after the last one)
    const int need = int(p) * int(SH) - int(PT) + int(KH);
    const unsigned target = (p == OH || need > int(H)) ? H : unsigned(need < 0 ? 0 : need);
    const unsigned reads = (target - loaded) * ROW;
    const unsigned emits = (p == 0) ? 0u : EMITS;
    const unsigned len = reads > emits ? reads : emits;
    unsigned ox = 0, ky = 0, kx = 0, cg = 0;
    for (unsigned i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
      // within a phase the reads and the writes touch different rows of the ring
#pragma HLS DEPENDENCE variable=buf inter false
#pragma HLS DEPENDENCE variable=buf intra false
      if (i < reads) {
        buf[wslot * ROW + wpos] = in.read();
        if (++wpos == ROW) {
          wpos = 0;
          wslot = (wslot == R - 1) ? 0u : wslot + 1;
        }
      }
      if (i < emits) {
        const int iy = top + int(ky);
        const int ix = int(ox * SW + kx) - int(PL);
        const bool inside = iy >= 0 && iy < int(H) && ix >= 0 && ix < int(W);
        const unsigned slot = (base + ky >= R) ? base + ky - R : base + ky;
        const unsigned addr = inside ? slot * ROW + unsigned(ix) * CG + cg : 0u;
        const beat_t v = buf[addr];
        obeat_t o = 0;
        o(SIMD * IB - 1, 0) = inside ? v : (MASKED ? beat_t(0) : pad_beat);
        if (MASKED && inside) o[SIMD * IB] = 1;  // valid flag
        out.write(o);
        if (++cg == CG) {
          cg = 0;
          if (++kx == KW) {
            kx = 0;
            if (++ky == KH) {
              ky = 0;
              ++ox;
            }
          }
        }
      }
    }
    loaded = target;
    if (p > 0) {  // next output row: its window starts SH rows lower
      top += int(SH);
      base = (base + SH >= R) ? base + SH - R : base + SH;
    }
  }
}

#endif
