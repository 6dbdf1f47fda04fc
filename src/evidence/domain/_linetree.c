/*
 * Native RFC 6962 Merkle tree over newline-terminated lines.
 *
 * The same contract as ``evidence.domain.merkle.PyLineTree`` (the pure-Python
 * route, which the tests compare with this one): ``update(data)`` takes bytes
 * in any pieces; every line ending in '\n' is a leaf whose data is the line
 * without its '\n'; ``root()`` is the root over the leaves so far.
 *
 * Why native: verifying an artifact hashes every byte twice (the content hash
 * and the leaves), and one hashlib call per line costs about as much again in
 * Python. Here the leaves cost one SHA-256 pass, and the work runs without the
 * GIL, so the content hash can run beside it on another thread.
 *
 * SHA-256 comes from OpenSSL's libcrypto, the library Python's own hashlib uses.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: the cheapest calls per line */
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define DIGEST 32
#define MAX_HEIGHT 64

typedef struct {
    PyObject_HEAD
    /* Roots of perfect subtrees, largest first: heights strictly decrease. */
    unsigned char stack[MAX_HEIGHT][DIGEST];
    int heights[MAX_HEIGHT];
    int depth;
    unsigned long long count;
    SHA256_CTX partial; /* the leaf hash of the line not yet ended */
    unsigned long long partial_bytes;
    int busy; /* set while update() runs without the GIL */
} LineTree;

static void node_hash(const unsigned char *left, const unsigned char *right,
                      unsigned char *out) {
    static const unsigned char prefix = 0x01;
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, left, DIGEST);
    SHA256_Update(&ctx, right, DIGEST);
    SHA256_Final(out, &ctx);
}

static void start_leaf(LineTree *self) {
    static const unsigned char prefix = 0x00;
    SHA256_Init(&self->partial);
    SHA256_Update(&self->partial, &prefix, 1);
    self->partial_bytes = 0;
}

static void push_leaf(LineTree *self, unsigned char *digest) {
    int height = 0;
    while (self->depth > 0 && self->heights[self->depth - 1] == height) {
        node_hash(self->stack[self->depth - 1], digest, digest);
        self->depth -= 1;
        height += 1;
    }
    memcpy(self->stack[self->depth], digest, DIGEST);
    self->heights[self->depth] = height;
    self->depth += 1;
    self->count += 1;
}

static void feed(LineTree *self, const unsigned char *data, Py_ssize_t size) {
    unsigned char digest[DIGEST];
    const unsigned char *end = data + size;
    while (data < end) {
        const unsigned char *newline = memchr(data, '\n', (size_t)(end - data));
        if (newline == NULL) {
            SHA256_Update(&self->partial, data, (size_t)(end - data));
            self->partial_bytes += (unsigned long long)(end - data);
            return;
        }
        SHA256_Update(&self->partial, data, (size_t)(newline - data));
        SHA256_Final(digest, &self->partial);
        push_leaf(self, digest);
        start_leaf(self);
        data = newline + 1;
    }
}

static int LineTree_init(LineTree *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":LineTree", kwlist)) {
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "LineTree is in use by another thread");
        return -1;
    }
    self->depth = 0;
    self->count = 0;
    start_leaf(self);
    return 0;
}

static PyObject *LineTree_update(LineTree *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (self->busy) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "LineTree is in use by another thread");
        return NULL;
    }
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    feed(self, (const unsigned char *)view.buf, view.len);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *LineTree_root(LineTree *self, PyObject *Py_UNUSED(ignored)) {
    unsigned char current[DIGEST];
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "LineTree is in use by another thread");
        return NULL;
    }
    if (self->depth == 0) {
        SHA256((const unsigned char *)"", 0, current);
    } else {
        memcpy(current, self->stack[self->depth - 1], DIGEST);
        for (int i = self->depth - 2; i >= 0; i--) {
            node_hash(self->stack[i], current, current);
        }
    }
    return PyBytes_FromStringAndSize((const char *)current, DIGEST);
}

static PyTypeObject LineTreeType;

static PyObject *LineTree_copy(LineTree *self, PyObject *Py_UNUSED(ignored)) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "LineTree is in use by another thread");
        return NULL;
    }
    LineTree *twin = PyObject_New(LineTree, &LineTreeType);
    if (twin == NULL) {
        return NULL;
    }
    /* Everything after the object header is plain data (the SHA256_CTX included). */
    memcpy((char *)twin + sizeof(PyObject), (char *)self + sizeof(PyObject),
           sizeof(LineTree) - sizeof(PyObject));
    twin->busy = 0;
    return (PyObject *)twin;
}

static PyObject *LineTree_get_count(LineTree *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->count);
}

static PyObject *LineTree_get_pending(LineTree *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->partial_bytes);
}

static PyMethodDef LineTree_methods[] = {
    {"update", (PyCFunction)LineTree_update, METH_O,
     "Hash every line that ``data`` completes as a leaf; keep the rest for later."},
    {"root", (PyCFunction)LineTree_root, METH_NOARGS,
     "The RFC 6962 root over the complete lines so far."},
    {"copy", (PyCFunction)LineTree_copy, METH_NOARGS,
     "An independent tree in the same state (to go back to later)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef LineTree_getset[] = {
    {"count", (getter)LineTree_get_count, NULL, "Complete lines (leaves) so far.", NULL},
    {"pending", (getter)LineTree_get_pending, NULL,
     "Bytes after the last newline, not yet a leaf.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LineTreeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "evidence.domain._linetree.LineTree",
    .tp_doc = "RFC 6962 Merkle tree over newline-terminated lines (native).",
    .tp_basicsize = sizeof(LineTree),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)LineTree_init,
    .tp_methods = LineTree_methods,
    .tp_getset = LineTree_getset,
};

static struct PyModuleDef linetree_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "evidence.domain._linetree",
    .m_doc = "Native RFC 6962 Merkle tree over newline-terminated lines.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__linetree(void) {
    if (PyType_Ready(&LineTreeType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&linetree_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&LineTreeType);
    if (PyModule_AddObject(module, "LineTree", (PyObject *)&LineTreeType) < 0) {
        Py_DECREF(&LineTreeType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
