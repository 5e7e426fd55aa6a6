/* Makes the kernel library an importable extension module, so Python finds the compiled file through the
 * normal import system (editable installs, wheels, in-place builds) and then binds it with ctypes.
 * The kernels themselves (the C files of src/) never include Python.h: the QEMU harness links the same sources. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "sve_kernels compiled library (bound with ctypes)", -1, NULL,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
