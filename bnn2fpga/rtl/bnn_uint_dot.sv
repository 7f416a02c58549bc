// bnn_uint_dot: one PE lane group of the first-layer unit: the signed dot product of SIMD
// unsigned B-bit input codes with SIMD bipolar weights (bit 1 = +1, bit 0 = -1).  With B = 1
// it is also the unipolar ({0,1}, Si-BNN) x bipolar product.
//
// Parameters
//   SIMD  lanes (input channels per beat)
//   B     bits per input code
//   OW    output width (signed); the MVTU passes its accumulator width
// Ports
//   x      SIMD codes, code i = x[i*B +: B]
//   w      weight bits
//   valid  0 for a padded tap whose contribution must be exactly 0
//   dot    sum_i (w_i ? x_i : -x_i)
//
// No multipliers: the codes under +1 weights and under -1 weights are summed by two adder
// trees and subtracted once.
module bnn_uint_dot #(
    parameter int SIMD = 4,
    parameter int B = 4,
    parameter int OW = 12
) (
    input  logic                 valid,
    input  logic [SIMD*B-1:0]    x,
    input  logic [SIMD-1:0]      w,
    output logic signed [OW-1:0] dot
);
  localparam int SW = $clog2(SIMD * ((1 << B) - 1) + 1);

  logic [SIMD*B-1:0] x_pos, x_neg;
  for (genvar i = 0; i < SIMD; i++) begin : g_lane
    assign x_pos[i*B+:B] = w[i] ? x[i*B+:B] : '0;
    assign x_neg[i*B+:B] = w[i] ? '0 : x[i*B+:B];
  end

  logic [SW-1:0] sum_pos, sum_neg;
  bnn_adder_tree #(.N(SIMD), .W(B)) u_pos (.x(x_pos), .sum(sum_pos));
  bnn_adder_tree #(.N(SIMD), .W(B)) u_neg (.x(x_neg), .sum(sum_neg));

  logic signed [SW:0] diff;
  assign diff = $signed({1'b0, sum_pos}) - $signed({1'b0, sum_neg});
  assign dot = valid ? OW'(diff) : '0;
endmodule
