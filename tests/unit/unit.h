/* tests/unit/unit.h -- the shared main of the CUnit suites: each test file
 * lists its tests in a table `{name, fn}` and ends with
 * MC_UNIT_MAIN("suite", tests).  Exit status 1 when any assertion failed. */
#ifndef MC_UNIT_H
#define MC_UNIT_H
#include <CUnit/Basic.h>
#include <stddef.h>

static inline int
mc_unit_finish(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

#define MC_UNIT_MAIN(suite_name, tests)                                         \
    int main(void)                                                              \
    {                                                                           \
        if (CU_initialize_registry() != CUE_SUCCESS) return 1;                  \
        CU_pSuite s_ = CU_add_suite(suite_name, NULL, NULL);                    \
        for (size_t i_ = 0; i_ < sizeof tests / sizeof tests[0]; i_++)         \
            CU_add_test(s_, tests[i_].name, tests[i_].fn);                      \
        return mc_unit_finish();                                                \
    }

#endif
