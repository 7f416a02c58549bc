// bnn2fpga HLS library: the one include of the ap_types (ap_int.h, hls_stream.h).
//
// For C simulation with g++ these are hls4ml's copies (Apache-2.0); their own code trips
// -Wall -Wextra (uninitialised members inlined from ap_private.h).  This wrapper marks them as
// system headers, so those warnings are silenced here and only here: the library and the
// generated code still compile with -Wall -Wextra -Werror.  Vivado/Vitis HLS use their own
// headers through the same include.
#ifndef BNN_AP_TYPES_H
#define BNN_AP_TYPES_H

#if defined(__GNUC__) && !defined(__clang__) && !defined(__SYNTHESIS__)
#pragma GCC system_header
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "ap_int.h"
#include "hls_stream.h"

#if defined(__GNUC__) && !defined(__clang__) && !defined(__SYNTHESIS__)
#pragma GCC diagnostic pop
#endif

#endif
