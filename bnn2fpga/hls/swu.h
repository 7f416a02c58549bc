// bnn2fpga HLS library: sliding-window unit (SWU), the im2col generator in front of a conv's
// MVTU (and of a max-pool's reducer).
//
//   in  : H*W*CG beats of SIMD*IB bits per frame, raster order (row, column, channel group
//         fastest); CG = C/SIMD, lane i of a beat = channel g*SIMD + i at bits [i*IB, (i+1)*IB).
//   out : OH*OW*KH*KW*CG beats of SIMD*IB (+1 if MASKED) bits per frame: for each output pixel
//         in raster order, its window in (ky, kx, channel group) order = the MVTU's fan-in
//         order.  A tap outside the image (padding) is, exactly as the IR's Conv2D.pad says:
//           MASKED     : the valid flag (bit SIMD*IB) is 0, data 0   (bipolar, pad "zero";
//                        max-pool: padded positions are ignored)
//           not MASKED : every lane holds the code PAD, and the flag bit is absent
//                        (integer pad code; uint/unipolar pad "zero" = code 0)
//         Inside taps of a MASKED stream have the flag 1.  SIMD divides C, so a beat never
//         straddles two taps and one flag per beat suffices.
//   FRAMES: frames per call (default 1); the schedule runs on across the frames of a call.
//
// Micro-architecture (the schedule of the RTL's bnn_swu, with blocking stream accesses):
// one RAM holding a ring of R input rows, R*W*CG beats (1 read + 1 write port), and ONE
// flat II=1 loop for the whole call: each iteration may read one beat into the ring and
// emit one tap.  The schedule is a sequence of phases; phase p of a frame emits output row
// p-1 (OW*KH*KW*CG taps, from rows read earlier) while it reads the rows output row p adds
// (at most SH rows); the last phase of a frame emits its last output row while it reads the
// frame's remaining rows AND the first rows of the next frame (its output row 0), so the
// window never refills at a frame boundary (only the call's first phase, before any output
// row can start, reads alone).  A phase lasts max(emits, reads) iterations: the taps are
// emitted from its first iteration on, and the reads are spread evenly over the phase
// (Bresenham), so that neither side waits for the other longer than the rates demand: the
// writer keeps taking input at the rate the emitter works, and the emitter never waits
// for rows it does not need.  R = max(KH + SH, the rows a frame's end and the next frame's
// start hold at once): the rows being read never alias the rows being emitted, so the RAM
// carries no loop dependence.  Any padding works, also windows made only of padding.
#ifndef BNN_SWU_H
#define BNN_SWU_H

#include "bnn_common.h"

template <unsigned H, unsigned W, unsigned C, unsigned SIMD, unsigned IB,
          unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned OH, unsigned OW, bool MASKED, unsigned PAD,
          unsigned FRAMES = 1>
void SlidingWindow(hls::stream<ap_uint<SIMD * IB> > &in,
                   hls::stream<ap_uint<SIMD * IB + (MASKED ? 1 : 0)> > &out) {
  static_assert(C % SIMD == 0, "SIMD must divide the input channels");
  static_assert(FRAMES >= 1, "a call takes at least one frame");
  const unsigned CG = C / SIMD;
  const unsigned ROW = W * CG;                       // beats per input row
  const unsigned EMITS = OW * KH * KW * CG;          // taps per output row
  // rows output row 0 needs, and the first row output row OH-1 uses (clamped to the frame)
  const unsigned NEED0 = (KH <= PT) ? 0u : (KH - PT < H ? KH - PT : H);
  const unsigned LAST_TOP = ((OH - 1) * SH > PT) ? (OH - 1) * SH - PT : 0u;
  const unsigned EDGE = H - LAST_TOP + NEED0;        // rows held across a frame boundary
  const unsigned R = (KH + SH > EDGE) ? KH + SH : EDGE;  // rows in the ring
  const unsigned H_WRAP = H % R;                     // ring slots a frame advances
  const unsigned PT_WRAP = PT % R;
  // trip counts of the loop for the reports: every phase lasts max(emits, reads)
  const unsigned TRIP_MIN = FRAMES * (OH * EMITS > H * ROW ? OH * EMITS : H * ROW);
  const unsigned TRIP_MAX = FRAMES * (OH * EMITS + H * ROW + 1) + NEED0 * ROW + 1;
  static_assert(TRIP_MIN <= TRIP_MAX, "trip count bounds");
  typedef ap_uint<SIMD * IB> beat_t;
  typedef ap_uint<SIMD * IB + (MASKED ? 1 : 0)> obeat_t;

  beat_t buf[R * ROW];

  beat_t pad_beat = 0;  // every lane = PAD
  for (unsigned i = 0; i < SIMD; i++) {
#pragma HLS UNROLL
    pad_beat(i * IB + IB - 1, i * IB) = ap_uint<IB>(PAD);
  }

  // writer: ring slot and beat of the next read, rows of the current frame read so far
  unsigned wslot = 0, wpos = 0, loaded = 0;
  // emitter: ring slot of the current frame's row 0 and of input row `top` (= ky 0)
  unsigned fbase = 0;
  unsigned base = (R - PT_WRAP) % R;
  int top = -int(PT);
  unsigned ox = 0, ky = 0, kx = 0, cg = 0;
  // phase: p (0 = the call's first, reads only), frame f, iteration i of len, its reads
  // (next_loaded: rows of the current frame read once it ends, carry: rows of the next
  // frame it reads), emits, and the Bresenham term of the spread reads
  unsigned p = 0, f = 0, i = 0;
  unsigned reads = NEED0 * ROW, emits = 0, len = NEED0 * ROW;
  unsigned next_loaded = NEED0, carry = 0;
  int spread = int(reads);
  bool running = true;

  while (running) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=TRIP_MIN max=TRIP_MAX
    // the rows being read never alias the rows being emitted (R rows in the ring)
#pragma HLS DEPENDENCE variable=buf inter false
#pragma HLS DEPENDENCE variable=buf intra false
    // spread reads: the phase's k-th read comes at the first i with (i+1)*reads > k*len
    if (spread > 0) {
      spread -= int(len);
      buf[wslot * ROW + wpos] = in.read();
      if (++wpos == ROW) {
        wpos = 0;
        wslot = (wslot == R - 1) ? 0u : wslot + 1;
      }
    }
    spread += int(reads);
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
    if (++i >= len) {  // the phase ends: set up the next one
      i = 0;
      ox = 0;
      loaded = next_loaded;
      if (p > 0) {  // an output row was emitted: the next one starts SH rows lower
        top += int(SH);
        base = (base + SH >= R) ? base + SH - R : base + SH;
      }
      if (p == OH) {  // the frame's last output row was emitted: on to the next frame
        fbase = (fbase + H_WRAP >= R) ? fbase + H_WRAP - R : fbase + H_WRAP;
        base = (fbase >= PT_WRAP) ? fbase - PT_WRAP : fbase + R - PT_WRAP;
        top = -int(PT);
        loaded = carry;
        f++;
        p = 1;
      } else {
        p++;
      }
      if (f == FRAMES) {
        running = false;
      } else {
        // rows of this frame needed once the phase ends: those of output row p, all of
        // them in its last phase; that phase also reads the next frame's first rows
        const int need = int(p) * int(SH) - int(PT) + int(KH);
        const bool last = p == OH;
        next_loaded = (last || need > int(H)) ? H : unsigned(need < 0 ? 0 : need);
        carry = (last && f + 1 < FRAMES) ? NEED0 : 0u;
        reads = (next_loaded - loaded + carry) * ROW;
        emits = EMITS;
        len = reads > emits ? reads : emits;
        spread = int(reads);
      }
    }
  }
}

#endif
