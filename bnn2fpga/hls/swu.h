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
//   numReps: frames per call (a runtime count, FINN's numReps); the schedule runs on across
//         the frames of a call (a call of N frames must be given N frames).
//   LB   : where the line buffer lives (BnnStorage, the plan's estimate decides it): register
//         -> partitioned completely; lutram / bram / uram -> a simple dual-port RAM
//         (BIND_STORAGE ram_s2p on Vitis HLS, RESOURCE RAM_S2P_* on Vivado HLS); AUTO ->
//         the tool's choice.  One SwuBuffer specialisation per storage declares it.
//
// Micro-architecture: the RTL's bnn_swu, with blocking stream accesses.  One RAM holds a
// ring of NROWS input rows (bnn_swu's: max(KH, SH) + SH, or the rows a frame's last output
// row and the next frame's first one hold at once) and a spare row, (NROWS+1)*W*CG beats,
// 1 read + 1 write port.  ONE flat II=1 loop runs the whole call; each iteration may emit one tap and read
// one beat, with bnn_swu's rules:
//   emitter: output row oy starts once the input rows it covers are complete (plus the
//            rows a stride > kernel skips; the frame's last output row waits for the whole
//            frame) and releases the rows the next output row does not use when it ends;
//   writer : reserves a ring row when it starts one, and may read while a row is open or
//            a ring row is free.
// Where bnn_swu reads whenever a beat is offered, a process with blocking reads must decide
// by itself when to read (a read that waits holds the emitter too).  The writer reads when
// the emitter is waiting for rows (it must), and otherwise at the rate the emitter works:
// a credit of H*W*CG per tap emitted against OH*OW*KH*KW*CG per beat read: the reads
// keep an even pace, just enough ahead of the taps that every output row finds its rows
// read (the lead: a constant of the geometry).  So the writer
// takes a frame in the time the emitter sends it, the next frame's first rows arrive while
// the emitter sends the last output row (no refill at a frame boundary), and neither side
// waits longer than the rates demand.  A tap reads only complete rows and the writer only
// writes released rows, so the RAM carries no dependence between the two (DEPENDENCE
// false).  Any padding works, also windows made only of padding.
#ifndef BNN_SWU_H
#define BNN_SWU_H

#include "bnn_common.h"

template <unsigned H, unsigned W, unsigned C, unsigned SIMD, unsigned IB,
          unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned PT, unsigned PL, unsigned OH, unsigned OW>
struct SwuGeometry {
  static const unsigned CG = C / SIMD;
  static const unsigned ROW = W * CG;                       // beats per input row
  static const unsigned READS = H * ROW;                    // beats read per frame
  static const unsigned EMITS = OH * OW * KH * KW * CG;     // taps emitted per frame
  // bnn_swu's ring: NROWS = max(KS + SH, EDGE_ROWS)
  static const unsigned KS = KH > SH ? KH : SH;
  static const unsigned FIRST = KS > PT ? (KS - PT < H ? KS - PT : H) : 0u;
  static const unsigned LAST_TOP = (OH - 1) * SH > PT ? (OH - 1) * SH - PT : 0u;
  static const unsigned EDGE = H - LAST_TOP + FIRST;
  static const unsigned NROWS = KS + SH > EDGE ? KS + SH : EDGE;
  // one spare row in the RAM: at most NROWS rows are held, so a released row is written
  // again two iterations later at the earliest (its last tap read and its first new beat
  // never meet in one cycle, whatever stage the tool places each in)
  static const unsigned RING = NROWS + 1;
  // trip counts of one frame for the reports: reads and taps overlap, at least the larger
  static const unsigned TRIP_MIN = EMITS > READS ? EMITS : READS;
  static const unsigned TRIP_MAX = EMITS + READS;
};

#define BNN_SWU_PARAMS                                                                    \
  unsigned H, unsigned W, unsigned C, unsigned SIMD, unsigned IB, unsigned KH, unsigned KW, \
      unsigned SH, unsigned SW, unsigned PT, unsigned PL, unsigned OH, unsigned OW,         \
      bool MASKED, unsigned PAD
#define BNN_SWU_ARGS H, W, C, SIMD, IB, KH, KW, SH, SW, PT, PL, OH, OW, MASKED, PAD
#define BNN_SWU_RING (SwuGeometry<H, W, C, SIMD, IB, KH, KW, SH, SW, PT, PL, OH, OW>::RING * \
                      SwuGeometry<H, W, C, SIMD, IB, KH, KW, SH, SW, PT, PL, OH, OW>::ROW)

// The window's loop over the caller's line buffer buf (declared, and bound, by one of the
// SwuBuffer specialisations below; inlined into it, so that the binding holds).
template <BNN_SWU_PARAMS>
void SwuLoop(hls::stream<ap_uint<SIMD * IB> > &in,
             hls::stream<ap_uint<SIMD * IB + (MASKED ? 1 : 0)> > &out,
             ap_uint<SIMD * IB> buf[BNN_SWU_RING], unsigned numReps) {
#pragma HLS INLINE
  typedef SwuGeometry<H, W, C, SIMD, IB, KH, KW, SH, SW, PT, PL, OH, OW> G;
  const unsigned CG = G::CG, ROW = G::ROW, READS = G::READS, EMITS = G::EMITS;
  const unsigned KS = G::KS, NROWS = G::NROWS, RING = G::RING;
  const unsigned TRIP_MIN = G::TRIP_MIN, TRIP_MAX = G::TRIP_MAX;
  static_assert(TRIP_MIN <= TRIP_MAX, "trip count bounds");
  typedef ap_uint<SIMD * IB> beat_t;
  typedef ap_uint<SIMD * IB + (MASKED ? 1 : 0)> obeat_t;

  beat_t pad_beat = 0;  // every lane = PAD
  for (unsigned i = 0; i < SIMD; i++) {
#pragma HLS UNROLL
    pad_beat(i * IB + IB - 1, i * IB) = ap_uint<IB>(PAD);
  }

  // writer: beat of the open row, its ring slot, rows reserved and not released, reads left
  unsigned wpos = 0, wslot = 0, filled = 0;
  unsigned reads_left = numReps * READS;
  // emitter: tap counters, lowest row held (of the emitter's frame) and its slot, taps left
  unsigned oy = 0, ox = 0, ky = 0, kx = 0, cg = 0, lo = 0, rslot = 0;
  unsigned emits_left = numReps * EMITS;
  // read credit (see above), in units of 1 / (READS * EMITS) of a frame: it starts at
  // the lead that keeps the reads ahead of every output row's rows (and a beat more), a
  // constant (the loop only folds constants)
  long long credit = 0;
  for (unsigned q = 0; q < OH; q++) {
#pragma HLS UNROLL
    const int rows = int(q * SH) - int(PT) + int(KS);
    const long long need = (q == OH - 1 || rows > int(H)) ? H : (rows < 0 ? 0 : rows);
    const long long lead = need * ROW * EMITS - (long long)q * (OW * KH * KW * CG) * READS;
    if (lead > credit) credit = lead;
  }
  credit += EMITS;

  while (emits_left > 0) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=TRIP_MIN max=TRIP_MAX
    // taps read complete rows only, the writer writes released rows only
#pragma HLS DEPENDENCE variable=buf inter false
#pragma HLS DEPENDENCE variable=buf intra false
    // ---- the emitter's rows for output row oy (bnn_swu's hi / next_lo) ----
    const int top = int(oy * SH) - int(PT);
    const bool last_row = oy == OH - 1;
    int hi = top + int(KH) - 1;
    if (top + int(SH) - 1 > hi) hi = top + int(SH) - 1;  // rows skipped by a stride > kernel
    if (hi > int(H) - 1 || last_row) hi = int(H) - 1;    // the last row waits for the frame
    int next_lo = top + int(SH);
    if (next_lo < 0) next_lo = 0;
    if (next_lo > int(H) || last_row) next_lo = int(H);
    const unsigned complete = filled - (wpos != 0 ? 1u : 0u);
    const bool row_start = ox == 0 && ky == 0 && kx == 0 && cg == 0;
    const bool row_end = ox == OW - 1 && ky == KH - 1 && kx == KW - 1 && cg == CG - 1;
    const bool go = !row_start || int(complete) >= hi - int(lo) + 1;
    // ---- the writer: it must read while the emitter waits, else at the emitter's rate ----
    const bool room = reads_left > 0 && (wpos != 0 || filled < NROWS);
    const bool rd = room && (!go || credit > 0);
    unsigned released = 0;
    if (go) {
      const int prow = int(oy * SH + ky);
      const int pcol = int(ox * SW + kx);
      const bool inside = prow >= int(PT) && prow < int(PT + H) && pcol >= int(PL) &&
                          pcol < int(PL + W);
      unsigned slot = rslot + unsigned(prow - int(PT) - int(lo));
      if (slot >= RING) slot -= RING;
      const unsigned addr = inside ? slot * ROW + unsigned(pcol - int(PL)) * CG + cg : 0u;
      const beat_t v = buf[addr];
      obeat_t o = 0;
      o(SIMD * IB - 1, 0) = inside ? v : (MASKED ? beat_t(0) : pad_beat);
      if (MASKED && inside) o[SIMD * IB] = 1;  // valid flag
      out.write(o);
      emits_left--;
      credit += READS;
      if (row_end) {
        released = unsigned(next_lo) - lo;
        rslot += released;
        if (rslot >= RING) rslot -= RING;
        lo = last_row ? 0u : unsigned(next_lo);  // the next frame starts at row 0
      }
      if (++cg == CG) {
        cg = 0;
        if (++kx == KW) {
          kx = 0;
          if (++ky == KH) {
            ky = 0;
            if (++ox == OW) {
              ox = 0;
              oy = last_row ? 0u : oy + 1;
            }
          }
        }
      }
    }
    if (rd) {
      buf[wslot * ROW + wpos] = in.read();
      reads_left--;
      credit -= EMITS;
      if (wpos == 0) filled++;  // a ring row is reserved when its first beat arrives
      if (++wpos == ROW) {
        wpos = 0;
        wslot = (wslot == RING - 1) ? 0u : wslot + 1;
      }
    }
    filled -= released;
#ifdef BNN2FPGA_SWU_TRACE
    BNN2FPGA_SWU_TRACE(rd, go);  // C simulation only: the schedule, iteration by iteration
#endif
  }
}

// The line buffer in the storage the plan's estimate chose: one write (the stream's beat)
// and one read (a tap) per cycle at different addresses, a simple dual-port RAM.
template <BnnStorage S>
struct SwuBuffer;

#define BNN_SWU_RUN                                                                         \
  template <BNN_SWU_PARAMS>                                                                 \
  static void run(hls::stream<ap_uint<SIMD * IB> > &in,                                     \
                  hls::stream<ap_uint<SIMD * IB + (MASKED ? 1 : 0)> > &out, unsigned numReps)
#define BNN_SWU_LOOP SwuLoop<BNN_SWU_ARGS>(in, out, buf, numReps)

template <>
struct SwuBuffer<BNN_STORAGE_AUTO> {
  BNN_SWU_RUN {
#pragma HLS INLINE
    ap_uint<SIMD * IB> buf[BNN_SWU_RING];
    BNN_SWU_LOOP;
  }
};

template <>
struct SwuBuffer<BNN_STORAGE_REGISTER> {
  BNN_SWU_RUN {
#pragma HLS INLINE
    ap_uint<SIMD * IB> buf[BNN_SWU_RING];
#pragma HLS ARRAY_PARTITION variable=buf complete dim=1
    BNN_SWU_LOOP;
  }
};

template <>
struct SwuBuffer<BNN_STORAGE_LUTRAM> {
  BNN_SWU_RUN {
#pragma HLS INLINE
    ap_uint<SIMD * IB> buf[BNN_SWU_RING];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=buf type=ram_s2p impl=lutram
#else
#pragma HLS RESOURCE variable=buf core=RAM_S2P_LUTRAM
#endif
    BNN_SWU_LOOP;
  }
};

template <>
struct SwuBuffer<BNN_STORAGE_BRAM> {
  BNN_SWU_RUN {
#pragma HLS INLINE
    ap_uint<SIMD * IB> buf[BNN_SWU_RING];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=buf type=ram_s2p impl=bram
#else
#pragma HLS RESOURCE variable=buf core=RAM_S2P_BRAM
#endif
    BNN_SWU_LOOP;
  }
};

template <>
struct SwuBuffer<BNN_STORAGE_URAM> {
  BNN_SWU_RUN {
#pragma HLS INLINE
    ap_uint<SIMD * IB> buf[BNN_SWU_RING];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=buf type=ram_s2p impl=uram
#else
#pragma HLS RESOURCE variable=buf core=RAM_S2P_URAM
#endif
    BNN_SWU_LOOP;
  }
};

template <BNN_SWU_PARAMS, BnnStorage LB = BNN_STORAGE_AUTO>
void SlidingWindow(hls::stream<ap_uint<SIMD * IB> > &in,
                   hls::stream<ap_uint<SIMD * IB + (MASKED ? 1 : 0)> > &out, unsigned numReps) {
  static_assert(C % SIMD == 0, "SIMD must divide the input channels");
  SwuBuffer<LB>::template run<BNN_SWU_ARGS>(in, out, numReps);
}

#undef BNN_SWU_RUN
#undef BNN_SWU_LOOP
#undef BNN_SWU_RING
#undef BNN_SWU_ARGS
#undef BNN_SWU_PARAMS

#endif
