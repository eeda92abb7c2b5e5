// All shims are static inline in include/Shims.h; this file gives the C target a translation unit.
#include "Shims.h"
