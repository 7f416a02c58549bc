// bnn_thermometer: FracBNN's thermometer input on chip (ir.ThermometerEncode).  One pixel of
// C 8-bit codes per input beat; output bit c*L + k = [p_c >= T_k] (bipolar: 1 = +1), L
// comparators per colour channel against constant thresholds.  The host streams raw pixels
// (C bytes per pixel), the unit expands them to C*L bits.
//
// Parameters
//   C       colour channels per pixel (input lanes of 8 bits)
//   L       levels per channel (output bits per channel)
//   THRESH  L thresholds of 9 bits (0..256; 256 never fires), T_k at bits [k*9 +: 9]
// Streams
//   s: C codes per beat, code c at s_tdata[c*8 +: 8]
//   m: C*L bits per beat (one pixel)
// One output register; the handshake stalls it without a skid buffer.
module bnn_thermometer #(
    parameter int C = 3,
    parameter int L = 32,
    parameter logic [L*9-1:0] THRESH = '0
) (
    input  logic           clk,
    input  logic           rst_n,
    input  logic [C*8-1:0] s_tdata,
    input  logic           s_tvalid,
    output logic           s_tready,
    output logic [C*L-1:0] m_tdata,
    output logic           m_tvalid,
    input  logic           m_tready
);
  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;

  logic [C*L-1:0] bits;
  always_comb begin
    for (int c = 0; c < C; c++) begin
      for (int k = 0; k < L; k++) begin
        bits[c*L+k] = {1'b0, s_tdata[c*8+:8]} >= THRESH[k*9+:9];
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= s_tvalid;
  end
  always_ff @(posedge clk) begin
    if (en && s_tvalid) m_tdata <= bits;
  end
endmodule
