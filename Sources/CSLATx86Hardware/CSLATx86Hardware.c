// The instruction is a static inline function in the header; this file
// gives the target its one translation unit.
#include "CSLATx86Hardware.h"
