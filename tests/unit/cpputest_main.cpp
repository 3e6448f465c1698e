// SPDX-License-Identifier: ISC
// Shared main() of the CppUTest executables.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char **argv)
{
	// The C++ standard library allocates behind CppUTest's back; leaks are
	// left to the sanitizer build and valgrind.
	MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
	return CommandLineTestRunner::RunAllTests(argc, argv);
}
