// The instructions are static inline functions in the header; this file
// gives the target its one translation unit.
#include "CSLATArm64Hardware.h"
