// bnn_frame_last: TLAST for a stream of BEATS beats per frame (counts handshakes).
module bnn_frame_last #(
    parameter int BEATS = 1
) (
    input  logic clk,
    input  logic rst_n,
    input  logic fire,
    output logic last
);
  localparam int CW = BEATS > 1 ? $clog2(BEATS) : 1;

  logic [CW-1:0] beat;
  assign last = beat == CW'(BEATS - 1);

  always_ff @(posedge clk) begin
    if (!rst_n) beat <= '0;
    else if (fire) beat <= last ? '0 : beat + 1'b1;
  end
endmodule
