// bnn_xnor_popcount: one PE lane group of the binary MVTU: the signed dot product of SIMD
// bipolar activations with SIMD bipolar weights (bit 1 = +1, bit 0 = -1).
//
// Parameters
//   SIMD  lanes (input channels per beat)
//   OW    output width (signed); the MVTU passes its accumulator width
// Ports
//   a, w     activation and weight bits
//   valid    0 for a padded tap (pad "zero" of a bipolar tensor): the beat adds exactly 0
//   dot      2*popcount(XNOR(a, w)) - SIMD, or 0 when !valid
//
// dot is formed as P - (SIMD - P) so that both operands fit the popcount width + 1.
module bnn_xnor_popcount #(
    parameter int SIMD = 8,
    parameter int OW = 8
) (
    input  logic                 valid,
    input  logic [SIMD-1:0]      a,
    input  logic [SIMD-1:0]      w,
    output logic signed [OW-1:0] dot
);
  localparam int PW = $clog2(SIMD + 1);

  logic [PW-1:0] agree;
  bnn_adder_tree #(.N(SIMD), .W(1)) u_popcount (.x(~(a ^ w)), .sum(agree));

  logic signed [PW:0] diff;
  assign diff = $signed({1'b0, agree}) - $signed({1'b0, PW'(SIMD) - agree});
  assign dot = valid ? OW'(diff) : '0;
endmodule
