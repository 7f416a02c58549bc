// Self-checking testbench of bnn_dwc over many width pairs (tests/test_rtl_dwc.py).
//
// Per pair, two converters run side by side: one with random stalls on both sides (the
// bit stream must come out unchanged), one without (it must also move one beat per cycle
// on its slower side, as folding.node_cycles assumes of every converter).  Bit k of the
// stream is a hash of k, so a dropped, repeated or misplaced bit shows.
module tb_dwc_pair #(
    parameter int IWB = 8,
    parameter int OWB = 4,
    parameter int STALL_PCT = 0,
    parameter int BEATS = 200,   // output beats to check
    parameter int SEED = 1
) (
    input logic clk,
    input logic rst_n,
    output logic done,
    output logic [31:0] cycles   // cycles until the last output beat
);
  function automatic logic stream_bit(int unsigned k);
    logic [31:0] x = (k + 32'(SEED)) * 32'h9E3779B1;
    return ^x[31:11];
  endfunction

  logic [IWB-1:0] s_tdata;
  logic s_tvalid, s_tready, m_tvalid, m_tready;
  logic [OWB-1:0] m_tdata;
  int unsigned in_beat, out_beat;

  bnn_dwc #(.IWB(IWB), .OWB(OWB)) dut (.*);

  always_comb
    for (int i = 0; i < IWB; i++) s_tdata[i] = stream_bit(in_beat * IWB + i);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      in_beat <= 0;
      out_beat <= 0;
      s_tvalid <= 1'b0;
      m_tready <= 1'b0;
      done <= 1'b0;
      cycles <= 0;
    end else begin
      s_tvalid <= 32'($urandom_range(99)) >= STALL_PCT;
      m_tready <= 32'($urandom_range(99)) >= STALL_PCT;
      if (s_tvalid && s_tready) in_beat <= in_beat + 1;
      if (!done) cycles <= cycles + 1;
      if (m_tvalid && m_tready) begin
        for (int i = 0; i < OWB; i++)
          if (m_tdata[i] !== stream_bit(out_beat * OWB + i))
            $fatal(1, "bnn_dwc IWB=%0d OWB=%0d stall=%0d%%: output beat %0d bit %0d is %b, the input stream had %b",
                   IWB, OWB, STALL_PCT, out_beat, i, m_tdata[i],
                   stream_bit(out_beat * OWB + i));
        out_beat <= out_beat + 1;
        if (out_beat + 1 == BEATS) done <= 1'b1;
      end
    end
  end
endmodule

module tb_dwc;
  localparam int N = 24;
  localparam int IW[N] = '{1, 8, 2, 32, 4, 16, 3, 12, 24, 5, 64, 7,
                           8, 1, 6, 32, 12, 4, 48, 15, 9, 10, 2, 256};
  localparam int OW[N] = '{8, 1, 6, 4, 32, 128, 12, 3, 8, 20, 16, 21,
                           12, 3, 4, 24, 18, 6, 27, 5, 6, 26, 2, 64};
  localparam int BEATS = 300;

  logic clk = 1'b0, rst_n = 1'b0;
  logic [2*N-1:0] done;
  logic [31:0] cycles[N];

  always #1 clk = ~clk;

  for (genvar p = 0; p < N; p++) begin : g_pair
    logic [31:0] unused;
    tb_dwc_pair #(.IWB(IW[p]), .OWB(OW[p]), .STALL_PCT(0), .BEATS(BEATS), .SEED(p))
        full (.clk, .rst_n, .done(done[2*p]), .cycles(cycles[p]));
    tb_dwc_pair #(.IWB(IW[p]), .OWB(OW[p]), .STALL_PCT(40), .BEATS(BEATS), .SEED(100 + p))
        stall (.clk, .rst_n, .done(done[2*p+1]), .cycles(unused));
  end

  initial begin
    repeat (3) @(posedge clk);
    rst_n = 1'b1;
    fork
      wait (&done);
      begin
        repeat (20 * BEATS * 64) @(posedge clk);
        $fatal(1, "timeout: converters done %b", done);
      end
    join_any
    for (int p = 0; p < N; p++)
      $display("pair IWB=%0d OWB=%0d cycles=%0d", IW[p], OW[p], cycles[p]);
    $finish;
  end
endmodule
