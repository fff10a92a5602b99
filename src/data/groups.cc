#include "data/groups.h"
