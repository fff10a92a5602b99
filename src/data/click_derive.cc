#include "data/click_derive.h"
