// bnn_swu: sliding-window unit (im2col): turns a stream of input pixels into the stream of
// window taps an MVTU (or the pool reducer) consumes, with exact padding.
//
// Parameters
//   SIMD, EB      elements per beat and bits per element; SIMD divides C (folding.py)
//   C, IH, IW     input channels, height, width
//   KH, KW        kernel;  SH, SW  stride;  PT, PL  top/left padding (bottom/right padding
//                 follows from OH, OW)
//   OH, OW        output height, width
//   PAD_CODE      element code emitted on a padded tap (pad = integer code, or 0)
// Streams
//   s: the input frame channels-last, SIMD channels per beat (IH*IW*C/SIMD beats/frame)
//   m: for oy, ox, ky, kx, cg: SIMD channels of tap (ky, kx); m_tuser = 0 on a padded tap
//      (the consumer decides whether a padded tap contributes 0 or PAD_CODE)
//
// Line buffer: a ring of NROWS input rows (max(KH, SH) + SH, more when the frame edges
// need it) in one simple dual-port memory of NROWS * IW * C/SIMD words.  The writer fills
// rows in ring order and reserves a slot when it starts a row.  The reader starts output
// row oy only when every input row it needs is complete (plus the rows the next output row
// skips, so that they can be released; the last row of a frame waits for the whole frame)
// and releases rows when it moves on.  The extra SH rows let the writer fill the next
// output row's rows (and the next frame's first rows) while the reader is still emitting.
// Reader pipeline: address -> sync read -> output, one enable (output free or consumed) as
// in bnn_mvtu.  Output rows made only of padding need no input: they may run ahead into
// the next frame.
module bnn_swu #(
    parameter int SIMD = 1,
    parameter int EB = 1,
    parameter int C = 1,
    parameter int IH = 4,
    parameter int IW = 4,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int SH = 1,
    parameter int SW = 1,
    parameter int PT = 1,
    parameter int PL = 1,
    parameter int OH = 4,
    parameter int OW = 4,
    parameter int PAD_CODE = 0
) (
    input  logic                 clk,
    input  logic                 rst_n,
    input  logic [SIMD*EB-1:0]   s_tdata,
    input  logic                 s_tvalid,
    output logic                 s_tready,
    output logic [SIMD*EB-1:0]   m_tdata,
    output logic                 m_tuser,
    output logic                 m_tvalid,
    input  logic                 m_tready
);
  localparam int DW = SIMD * EB;
  localparam int CG = C / SIMD;
  localparam int RB = IW * CG;  // beats per input row
  // ring size: the rows of one output row plus the next SH rows, and at a frame boundary
  // the last output row's rows plus the next frame's first ones (no bubble between frames)
  localparam int KS = KH > SH ? KH : SH;
  localparam int FIRST_ROWS = KS - PT < IH ? KS - PT : IH;
  localparam int LAST_TOP = (OH - 1) * SH - PT > 0 ? (OH - 1) * SH - PT : 0;
  localparam int EDGE_ROWS = IH - LAST_TOP + FIRST_ROWS;
  localparam int NROWS = KS + SH > EDGE_ROWS ? KS + SH : EDGE_ROWS;
  localparam int DEPTH = NROWS * RB;
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int RBW = RB > 1 ? $clog2(RB) : 1;
  localparam int NRW = $clog2(NROWS + 1);
  localparam int SLW = NROWS > 1 ? $clog2(NROWS) : 1;
  localparam int IHW = $clog2(IH + 1);
  localparam int OYW = OH > 1 ? $clog2(OH) : 1;
  localparam int OXW = OW > 1 ? $clog2(OW) : 1;
  localparam int KYW = KH > 1 ? $clog2(KH) : 1;
  localparam int KXW = KW > 1 ? $clog2(KW) : 1;
  localparam int CGW = CG > 1 ? $clog2(CG) : 1;

  logic [DW-1:0] mem[DEPTH];

  // ---- writer: input rows into the ring ---------------------------------------------------
  logic [RBW-1:0] w_col;
  logic [AW-1:0] w_addr;
  logic [NRW-1:0] filled;  // rows reserved (complete or being written), not yet released
  logic [NRW-1:0] release_rows;

  assign s_tready = (w_col != '0) || (filled < NRW'(NROWS));
  wire s_fire = s_tvalid && s_tready;

  always_ff @(posedge clk) begin
    if (s_fire) mem[w_addr] <= s_tdata;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      w_col <= '0;
      w_addr <= '0;
      filled <= '0;
    end else begin
      if (s_fire) begin
        w_col <= (w_col == RBW'(RB - 1)) ? '0 : w_col + 1'b1;
        w_addr <= (w_addr == AW'(DEPTH - 1)) ? '0 : w_addr + 1'b1;
      end
      filled <= filled + NRW'(s_fire && w_col == '0) - release_rows;
    end
  end

  wire [NRW-1:0] complete = filled - NRW'(w_col != '0);

  // ---- reader: taps of output row oy ------------------------------------------------------
  logic [OYW-1:0] oy;
  logic [OXW-1:0] ox;
  logic [KYW-1:0] ky;
  logic [KXW-1:0] kx;
  logic [CGW-1:0] cg;
  logic [IHW-1:0] lo;      // input row held in slot r_slot (lowest row still needed)
  logic [SLW-1:0] r_slot;

  // per output row: rows needed before starting, and the first row kept after it
  int top, hi, next_lo, need;
  always_comb begin
    top = int'(oy) * SH - PT;
    if (oy == OYW'(OH - 1)) begin
      hi = IH - 1;        // wait for the whole frame: the next frame starts at row 0
      next_lo = IH;
    end else begin
      hi = top + KH - 1;
      if (top + SH - 1 > hi) hi = top + SH - 1;  // rows skipped by a stride > kernel
      if (hi > IH - 1) hi = IH - 1;
      next_lo = top + SH;
      if (next_lo < 0) next_lo = 0;
      if (next_lo > IH) next_lo = IH;
    end
    need = hi - int'(lo) + 1;
  end

  wire row_start = ox == '0 && ky == '0 && kx == '0 && cg == '0;
  wire row_end = ox == OXW'(OW - 1) && ky == KYW'(KH - 1) && kx == KXW'(KW - 1)
              && cg == CGW'(CG - 1);
  wire go = !row_start || int'(complete) >= need;

  // the tap's address, or a padded tap
  int prow, pcol, slot;
  logic pad;
  logic [AW-1:0] raddr;
  always_comb begin
    prow = int'(oy) * SH + int'(ky);
    pcol = int'(ox) * SW + int'(kx);
    pad = prow < PT || prow >= PT + IH || pcol < PL || pcol >= PL + IW;
    slot = int'(r_slot) + (prow - PT - int'(lo));
    if (slot >= NROWS) slot = slot - NROWS;
    raddr = pad ? '0 : AW'(slot * RB + (pcol - PL) * CG + int'(cg));
  end

  logic en;
  assign en = !m_tvalid || m_tready;
  wire step = en && go;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      oy <= '0;
      ox <= '0;
      ky <= '0;
      kx <= '0;
      cg <= '0;
      lo <= '0;
      r_slot <= '0;
    end else if (step) begin
      cg <= (cg == CGW'(CG - 1)) ? '0 : cg + 1'b1;
      if (cg == CGW'(CG - 1)) begin
        kx <= (kx == KXW'(KW - 1)) ? '0 : kx + 1'b1;
        if (kx == KXW'(KW - 1)) begin
          ky <= (ky == KYW'(KH - 1)) ? '0 : ky + 1'b1;
          if (ky == KYW'(KH - 1)) begin
            ox <= (ox == OXW'(OW - 1)) ? '0 : ox + 1'b1;
            if (ox == OXW'(OW - 1)) oy <= (oy == OYW'(OH - 1)) ? '0 : oy + 1'b1;
          end
        end
      end
      if (row_end) begin
        // the next frame starts at row 0; inside a frame lo may reach IH (all rows used)
        lo <= (oy == OYW'(OH - 1)) ? '0 : IHW'(next_lo);
        r_slot <= SLW'((int'(r_slot) + next_lo - int'(lo)) % NROWS);
      end
    end
  end

  assign release_rows = (step && row_end) ? NRW'(next_lo - int'(lo)) : '0;

  // ---- output stage: sync read, padded taps replaced by PAD_CODE --------------------------
  logic [DW-1:0] q;
  logic pad1;
  always_ff @(posedge clk) begin
    if (step) begin
      q <= mem[raddr];
      pad1 <= pad;
    end
  end
  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= go;
  end

  assign m_tdata = pad1 ? {SIMD{EB'(PAD_CODE)}} : q;
  assign m_tuser = !pad1;
endmodule
