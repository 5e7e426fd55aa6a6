/* Makes the MinHash kernels (minhash.c) an importable extension module, tokenizer._minhash_native, so Python
 * finds the compiled file through the normal import system (editable installs, wheels, sdists built on
 * Dataflow workers) and then binds it with ctypes; minhash.c itself never includes Python.h. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_minhash_native", "MinHash kernels (bound with ctypes by tokenizer._minhash_lib)", -1,
    NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__minhash_native(void) { return PyModule_Create(&native_module); }
