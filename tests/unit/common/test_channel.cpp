// SPDX-License-Identifier: ISC
#include <CppUTest/TestHarness.h>
