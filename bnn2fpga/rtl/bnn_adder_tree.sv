// bnn_adder_tree: sum of N unsigned W-bit values through an explicit binary adder tree.
//
// Parameters
//   N   number of inputs (>= 1)
//   W   bits per input
// Ports
//   x    N values packed LSB first (value i = x[i*W +: W])
//   sum  the sum, SW = clog2(N*(2^W-1)+1) bits (never overflows)
//
// Why a heap: node k = node 2k + node 2k+1, leaves at M..2M-1 (M = N rounded up to a power
// of two, missing leaves are 0).  The tree is log2(M) adders deep and every node is used, so
// the netlist is exactly the tree a reader expects.  It is the popcount of the XNOR unit
// (W = 1) and the lane sum of the fixed-point first layer (W = input bits).  Node widths are
// uniform; synthesis trims the constant-zero upper bits of the lower levels.
module bnn_adder_tree #(
    parameter int N = 8,
    parameter int W = 1,
    localparam int SW = $clog2(N * ((1 << W) - 1) + 1)
) (
    input  logic [N*W-1:0] x,
    output logic [SW-1:0]  sum
);
  localparam int M = 1 << $clog2(N);

  logic [SW-1:0] node[1:2*M-1];

  for (genvar i = 0; i < M; i++) begin : g_leaf
    if (i < N) begin : g_in
      assign node[M+i] = SW'(x[i*W+:W]);
    end else begin : g_zero
      assign node[M+i] = '0;
    end
  end

  for (genvar k = 1; k < M; k++) begin : g_add
    assign node[k] = node[2*k] + node[2*k+1];
  end

  assign sum = node[1];
endmodule
