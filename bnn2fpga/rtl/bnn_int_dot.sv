// bnn_int_dot: one PE lane group of the multi-bit MVTU: the signed dot product of SIMD input
// codes with SIMD signed WB-bit integer weights (float first/last layers, quantized_bits
// kernels), an integer multiply-accumulate over the lanes.
//
// Parameters
//   SIMD       lanes
//   B          bits per input code
//   WB         bits per weight (signed two's complement, >= 2)
//   IN_SIGNED  1: signed codes (fixed/int tensors); 0 with IN_UINT = 1: unsigned codes;
//              0 with IN_UINT = 0: bipolar bits (1 = +1, 0 = -1)
//   OW         output width (signed); the MVTU passes its accumulator width
// Ports
//   x      SIMD codes, code i = x[i*B +: B]
//   w      SIMD weights, weight i = w[i*WB +: WB] (bnn2fpga.packing.pack_fields)
//   valid  0 for a padded tap whose contribution must be exactly 0
//   dot    sum_i x_i * w_i
// Each product is (B+1) x WB bits (the input as a signed value): synthesis maps it to a DSP
// where the product is wide enough to pay (units/mvtu.py: multiplier_dsps), to LUTs below.
module bnn_int_dot #(
    parameter int SIMD = 4,
    parameter int B = 8,
    parameter int WB = 4,
    parameter int IN_SIGNED = 1,
    parameter int IN_UINT = 1,
    parameter int OW = 16
) (
    input  logic                 valid,
    input  logic [SIMD*B-1:0]    x,
    input  logic [SIMD*WB-1:0]   w,
    output logic signed [OW-1:0] dot
);
  localparam int XV = B + 1;        // an input code as a signed value
  localparam int PW = XV + WB;      // one product

  logic signed [OW-1:0] sum;
  always_comb begin
    sum = '0;
    for (int i = 0; i < SIMD; i++) begin
      logic signed [XV-1:0] xv;
      logic signed [WB-1:0] wv;
      logic signed [PW-1:0] prod;
      if (IN_SIGNED != 0) xv = XV'($signed(x[i*B+:B]));
      else if (IN_UINT != 0) xv = $signed({1'b0, x[i*B+:B]});
      else xv = x[i*B] ? XV'(1) : -(XV'(1));  // -(..): see bnn_threshold.sv
      wv = $signed(w[i*WB+:WB]);
      prod = xv * wv;
      sum = sum + OW'(prod);
    end
  end
  assign dot = valid ? sum : '0;
endmodule
