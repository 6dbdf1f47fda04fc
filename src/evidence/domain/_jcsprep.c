/*
 * Native twin of ``evidence.domain.canonical._fast``: the walk that prepares a
 * value for orjson before orjson writes its RFC 8785 form.
 *
 * ``prepare(value, on_float, on_other)`` returns ``value`` itself when every
 * float in it is one that orjson writes as JCS does (finite, not whole, with an
 * absolute value in [1e-5, 2**53)); otherwise a copy, made only along the
 * paths that change, in which ``on_float(x)`` replaces each other float. Any
 * type but dict, list, str, int, bool and None is handed to ``on_other(x)``,
 * which raises (the exact route then takes over) or returns a replacement.
 * Only exact types count, as in the Python walk: a subclass goes to on_other.
 *
 * Why native: this walk visits every value of every record collected, and in
 * Python it costs more than orjson's parse and dump together.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define PLAIN_FROM 1e-5
#define PLAIN_TO 9007199254740992.0 /* 2**53: every float from here on is whole */

static PyObject *walk(PyObject *value, PyObject *on_float, PyObject *on_other);

/* A new reference to what ``item`` becomes, or NULL with an exception set. */
static PyObject *convert(PyObject *item, PyObject *on_float, PyObject *on_other) {
    PyTypeObject *kind = Py_TYPE(item);
    if (kind == &PyUnicode_Type || kind == &PyLong_Type || kind == &PyBool_Type ||
        item == Py_None) {
        return Py_NewRef(item);
    }
    if (kind == &PyFloat_Type) {
        double number = PyFloat_AS_DOUBLE(item);
        double size = fabs(number);
        if (size < PLAIN_TO && floor(number) == number) {
            /* A whole number below 2**53 is written as the integer it is (no
               ".0"), exactly as ``on_float`` would have it written. */
            return PyLong_FromDouble(number);
        }
        if (size >= PLAIN_FROM && size < PLAIN_TO) {
            return Py_NewRef(item);
        }
        return PyObject_CallOneArg(on_float, item);
    }
    if (kind == &PyDict_Type || kind == &PyList_Type) {
        return walk(item, on_float, on_other);
    }
    return PyObject_CallOneArg(on_other, item);
}

static PyObject *walk_dict(PyObject *value, PyObject *on_float, PyObject *on_other) {
    PyObject *changed = NULL;
    PyObject *key, *item;
    Py_ssize_t position = 0;
    while (PyDict_Next(value, &position, &key, &item)) {
        PyObject *new = convert(item, on_float, on_other);
        if (new == NULL) {
            Py_XDECREF(changed);
            return NULL;
        }
        if (new != item) {
            if (changed == NULL && (changed = PyDict_Copy(value)) == NULL) {
                Py_DECREF(new);
                return NULL;
            }
            if (PyDict_SetItem(changed, key, new) < 0) {
                Py_DECREF(new);
                Py_DECREF(changed);
                return NULL;
            }
        }
        Py_DECREF(new);
    }
    return changed != NULL ? changed : Py_NewRef(value);
}

static PyObject *walk_list(PyObject *value, PyObject *on_float, PyObject *on_other) {
    PyObject *changed = NULL;
    /* The callbacks are ours and do not change the list; the size is read each time anyway. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
        PyObject *item = PyList_GET_ITEM(value, i);
        Py_INCREF(item);
        PyObject *new = convert(item, on_float, on_other);
        if (new == NULL) {
            Py_DECREF(item);
            Py_XDECREF(changed);
            return NULL;
        }
        if (new != item) {
            if (changed == NULL &&
                (changed = PyList_GetSlice(value, 0, PyList_GET_SIZE(value))) == NULL) {
                Py_DECREF(item);
                Py_DECREF(new);
                return NULL;
            }
            PyList_SetItem(changed, i, new); /* steals new */
        } else {
            Py_DECREF(new);
        }
        Py_DECREF(item);
    }
    return changed != NULL ? changed : Py_NewRef(value);
}

static PyObject *walk(PyObject *value, PyObject *on_float, PyObject *on_other) {
    if (Py_EnterRecursiveCall(" while preparing a value for canonical JSON")) {
        return NULL;
    }
    PyObject *result = Py_TYPE(value) == &PyDict_Type
                           ? walk_dict(value, on_float, on_other)
                           : walk_list(value, on_float, on_other);
    Py_LeaveRecursiveCall();
    return result;
}

static PyObject *prepare(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "prepare(value, on_float, on_other) takes 3 arguments");
        return NULL;
    }
    return convert(args[0], args[1], args[2]);
}

static PyMethodDef jcsprep_methods[] = {
    {"prepare", (PyCFunction)(void (*)(void))prepare, METH_FASTCALL,
     "The value with each float orjson would write differently from JCS replaced."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef jcsprep_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "evidence.domain._jcsprep",
    .m_doc = "Native walk that prepares values for orjson's canonical output.",
    .m_size = -1,
    .m_methods = jcsprep_methods,
};

PyMODINIT_FUNC PyInit__jcsprep(void) { return PyModule_Create(&jcsprep_module); }
