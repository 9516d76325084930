// Pickle interpreter restricted to torch state_dicts. Objects are plain data
// (ints, strings, tuples, dicts, storage references, tensor descriptions);
// "calling" an allowed global is interpreted here, never executed. The loop
// is iterative and every structure is bounded, so malformed input can only
// produce an error.
#include "pickle.h"

#include <stdlib.h>
#include <string.h>

// Far above what a state_dict needs (a few thousand objects, a stack a few
// entries deep) yet small enough that hostile input cannot exhaust memory.
#define MAX_STACK (1u << 20)
#define MAX_MARKS 4096u
#define MAX_OBJECTS (1u << 22)

typedef enum ObjKind {
    OBJ_NONE, OBJ_BOOL, OBJ_INT, OBJ_FLOAT, OBJ_STR, OBJ_BYTES,
    OBJ_TUPLE, OBJ_LIST, OBJ_DICT, OBJ_GLOBAL, OBJ_STORAGE, OBJ_TENSOR,
} ObjKind;

static const char *const kind_names[] = {
    "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "global", "storage", "tensor",
};

typedef enum GlobalKind {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE, G_STORAGE, G_DTYPE,
} GlobalKind;

typedef struct AllowedGlobal {
    const char *module, *name;
    GlobalKind kind;
    TensorDType dtype;
} AllowedGlobal;

static const AllowedGlobal allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, DTYPE_F32},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, DTYPE_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, DTYPE_F32},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, DTYPE_F32},
    {"torch", "FloatStorage", G_STORAGE, DTYPE_F32},
    {"torch", "HalfStorage", G_STORAGE, DTYPE_F16},
    {"torch", "BFloat16Storage", G_STORAGE, DTYPE_BF16},
    {"torch", "DoubleStorage", G_STORAGE, DTYPE_F64},
    {"torch", "LongStorage", G_STORAGE, DTYPE_I64},
    {"torch", "IntStorage", G_STORAGE, DTYPE_I32},
    {"torch", "ByteStorage", G_STORAGE, DTYPE_U8},
    {"torch", "BoolStorage", G_STORAGE, DTYPE_BOOL},
    {"torch", "UntypedStorage", G_STORAGE, DTYPE_U8},
    {"torch.storage", "UntypedStorage", G_STORAGE, DTYPE_U8},
    {"torch", "float32", G_DTYPE, DTYPE_F32},
    {"torch", "float16", G_DTYPE, DTYPE_F16},
    {"torch", "bfloat16", G_DTYPE, DTYPE_BF16},
    {"torch", "float64", G_DTYPE, DTYPE_F64},
    {"torch", "int64", G_DTYPE, DTYPE_I64},
    {"torch", "int32", G_DTYPE, DTYPE_I32},
    {"torch", "uint8", G_DTYPE, DTYPE_U8},
    {"torch", "bool", G_DTYPE, DTYPE_BOOL},
};
#define N_ALLOWED (sizeof allowed_globals / sizeof allowed_globals[0])

typedef struct Obj Obj;

typedef struct TensorInfo {
    Obj *storage;
    int64_t offset;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS];
} TensorInfo;

struct Obj {
    ObjKind kind;
    Obj *next_alloc;  // every object is on one list, so cycles free cleanly
    union {
        int64_t i;
        double f;
        struct { const char *p; size_t len; } str;  // slice of the pickle bytes
        struct { Obj **items; size_t n, cap; } seq;  // dicts interleave key, value
        size_t global;                              // index into allowed_globals
        struct { const char *key; size_t key_len; int64_t numel; TensorDType dtype; } storage;
        TensorInfo *tensor;
    } u;
};

typedef struct Unpickler {
    const uint8_t *buf;
    size_t len, pos;
    Obj **stack;
    size_t sp, stack_cap;
    size_t *marks;  // heap, not inline: WASM stacks are small
    size_t nmarks, marks_cap;
    Obj **memo;
    size_t memo_cap;
    size_t memo_len;  // distinct slots in use: where MEMOIZE stores next
    Obj *objects;
    size_t nobjects;
    SamError *err;
} Unpickler;

static int fail(Unpickler *u, const char *what) {
    return sam_error(u->err, "pickle: %s at byte %zu", what, u->pos);
}

static Obj *new_obj(Unpickler *u, ObjKind kind) {
    if (u->nobjects >= MAX_OBJECTS) {
        fail(u, "too many objects");
        return NULL;
    }
    Obj *o = calloc(1, sizeof *o);
    if (!o) {
        fail(u, "out of memory");
        return NULL;
    }
    o->kind = kind;
    o->next_alloc = u->objects;
    u->objects = o;
    u->nobjects++;
    return o;
}

static void free_objects(Unpickler *u) {
    for (Obj *o = u->objects; o;) {
        Obj *next = o->next_alloc;
        if (o->kind == OBJ_TUPLE || o->kind == OBJ_LIST || o->kind == OBJ_DICT) free(o->u.seq.items);
        if (o->kind == OBJ_TENSOR) free(o->u.tensor);
        free(o);
        o = next;
    }
    u->objects = NULL;
}

static int seq_push(Unpickler *u, Obj *seq, Obj *item) {
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        Obj **items = realloc(seq->u.seq.items, cap * sizeof *items);
        if (!items) return fail(u, "out of memory");
        seq->u.seq.items = items;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return 0;
}

static int push(Unpickler *u, Obj *o) {
    if (!o) return -1;
    if (u->sp == u->stack_cap) {
        if (u->stack_cap >= MAX_STACK) return fail(u, "stack too deep");
        size_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        Obj **s = realloc(u->stack, cap * sizeof *s);
        if (!s) return fail(u, "out of memory");
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = o;
    return 0;
}

// The stack above the innermost MARK is off limits to plain pops.
static size_t stack_floor(const Unpickler *u) { return u->nmarks ? u->marks[u->nmarks - 1] : 0; }

static Obj *pop(Unpickler *u) {
    if (u->sp <= stack_floor(u)) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[--u->sp];
}

static Obj *top(Unpickler *u) {
    if (u->sp <= stack_floor(u)) {
        fail(u, "stack underflow");
        return NULL;
    }
    return u->stack[u->sp - 1];
}

static int pop_mark(Unpickler *u, size_t *mark) {
    if (!u->nmarks) return fail(u, "MARK expected");
    *mark = u->marks[--u->nmarks];
    return 0;
}

static const uint8_t *take(Unpickler *u, size_t n) {
    if (n > u->len - u->pos) {
        fail(u, "truncated data");
        return NULL;
    }
    const uint8_t *p = u->buf + u->pos;
    u->pos += n;
    return p;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

// GLOBAL's module and name are newline-terminated text.
static const char *take_line(Unpickler *u, size_t *n) {
    const uint8_t *start = u->buf + u->pos;
    const uint8_t *nl = memchr(start, '\n', u->len - u->pos);
    if (!nl) {
        fail(u, "unterminated text argument");
        return NULL;
    }
    *n = (size_t)(nl - start);
    u->pos += *n + 1;
    return (const char *)start;
}

static int push_int(Unpickler *u, int64_t v) {
    Obj *o = new_obj(u, OBJ_INT);
    if (!o) return -1;
    o->u.i = v;
    return push(u, o);
}

static int push_str(Unpickler *u, ObjKind kind, size_t n) {
    const uint8_t *p = take(u, n);
    if (!p) return -1;
    Obj *o = new_obj(u, kind);
    if (!o) return -1;
    o->u.str.p = (const char *)p;
    o->u.str.len = n;
    return push(u, o);
}

// Two's complement little-endian, as LONG1/LONG4 encode Python ints.
static int push_long(Unpickler *u, size_t n) {
    if (n > 8) return fail(u, "integer wider than 64 bits");
    const uint8_t *p = take(u, n);
    if (!p) return -1;
    uint64_t v = n ? le(p, (int)n) : 0;
    if (n && n < 8 && (p[n - 1] & 0x80)) v |= ~UINT64_C(0) << (8 * n);
    int64_t s;
    memcpy(&s, &v, sizeof s);
    return push_int(u, s);
}

static int memo_put(Unpickler *u, uint64_t idx) {
    // The pickler numbers memo slots consecutively, so an index beyond the
    // pickle length is hostile; refusing it bounds the memo's size.
    if (idx > u->len) return fail(u, "memo index out of range");
    Obj *o = top(u);
    if (!o) return -1;
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        Obj **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return fail(u, "out of memory");
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    if (!u->memo[idx]) u->memo_len++;
    u->memo[idx] = o;
    return 0;
}

static int memo_get(Unpickler *u, uint64_t idx) {
    if (idx >= u->memo_cap || !u->memo[idx]) return fail(u, "memo key not found");
    return push(u, u->memo[idx]);
}

static int find_global(Unpickler *u, const char *mod, size_t mod_len, const char *name, size_t name_len) {
    for (size_t i = 0; i < N_ALLOWED; i++) {
        const AllowedGlobal *g = &allowed_globals[i];
        if (strlen(g->module) == mod_len && memcmp(g->module, mod, mod_len) == 0 &&
            strlen(g->name) == name_len && memcmp(g->name, name, name_len) == 0) {
            Obj *o = new_obj(u, OBJ_GLOBAL);
            if (!o) return -1;
            o->u.global = i;
            return push(u, o);
        }
    }
    if (mod_len > 200) mod_len = 200;
    if (name_len > 200) name_len = 200;
    return sam_error(u->err, "checkpoint refuses pickle global '%.*s.%.*s' (only state_dict globals are allowed)",
                     (int)mod_len, mod, (int)name_len, name);
}

static int make_collection(Unpickler *u, ObjKind kind, size_t from) {
    Obj *o = new_obj(u, kind);
    if (!o) return -1;
    for (size_t i = from; i < u->sp; i++) {
        if (seq_push(u, o, u->stack[i])) return -1;
    }
    u->sp = from;
    return push(u, o);
}

static int make_tuple_n(Unpickler *u, size_t n) {
    if (u->sp < stack_floor(u) + n) return fail(u, "stack underflow");
    return make_collection(u, OBJ_TUPLE, u->sp - n);
}

// APPENDS/SETITEMS: items above the mark go into the container below it.
static int extend_from_mark(Unpickler *u, ObjKind want) {
    size_t mark = 0;
    if (pop_mark(u, &mark)) return -1;
    if (mark == 0 || mark <= stack_floor(u)) return fail(u, "no container below MARK");
    Obj *c = u->stack[mark - 1];
    if (c->kind != want) return fail(u, want == OBJ_LIST ? "APPENDS target is not a list" : "SETITEMS target is not a dict");
    if (want == OBJ_DICT && (u->sp - mark) % 2) return fail(u, "SETITEMS with an odd number of items");
    for (size_t i = mark; i < u->sp; i++) {
        if (seq_push(u, c, u->stack[i])) return -1;
    }
    u->sp = mark;
    return 0;
}

static int int_tuple(Unpickler *u, const Obj *t, int64_t *out, int *n, const char *what) {
    if (t->kind != OBJ_TUPLE) return sam_error(u->err, "pickle: tensor %s is a %s, not a tuple", what, kind_names[t->kind]);
    if (t->u.seq.n > TENSOR_MAX_DIMS) return sam_error(u->err, "pickle: tensor has %zu dimensions (at most %d supported)", t->u.seq.n, TENSOR_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const Obj *v = t->u.seq.items[i];
        if (v->kind != OBJ_INT || v->u.i < 0) return sam_error(u->err, "pickle: tensor %s must hold non-negative ints", what);
        out[i] = v->u.i;
    }
    *n = (int)t->u.seq.n;
    return 0;
}

static Obj *rebuild_tensor(Unpickler *u, Obj **args) {
    TensorInfo t;
    int nstride = 0;
    memset(&t, 0, sizeof t);
    if (args[0]->kind != OBJ_STORAGE) {
        sam_error(u->err, "pickle: _rebuild_tensor expects a storage, got %s", kind_names[args[0]->kind]);
        return NULL;
    }
    if (args[1]->kind != OBJ_INT || args[1]->u.i < 0) {
        sam_error(u->err, "pickle: tensor storage offset must be a non-negative int");
        return NULL;
    }
    if (int_tuple(u, args[2], t.shape, &t.ndim, "size") || int_tuple(u, args[3], t.stride, &nstride, "stride")) return NULL;
    if (nstride != t.ndim) {
        sam_error(u->err, "pickle: tensor size has %d dims but stride has %d", t.ndim, nstride);
        return NULL;
    }
    t.storage = args[0];
    t.offset = args[1]->u.i;
    Obj *o = new_obj(u, OBJ_TENSOR);
    // Once on the object list the info is freed with it, even on failure.
    if (o && !(o->u.tensor = malloc(sizeof t))) fail(u, "out of memory");
    if (!o || !o->u.tensor) return NULL;
    *o->u.tensor = t;
    return o;
}

// REDUCE and NEWOBJ: interprets a call of an allowed global on its arguments.
static int call_global(Unpickler *u, int newobj) {
    Obj *args = pop(u);
    if (!args) return -1;
    Obj *fn = pop(u);
    if (!fn) return -1;
    if (fn->kind != OBJ_GLOBAL) return sam_error(u->err, "pickle: cannot call a %s at byte %zu", kind_names[fn->kind], u->pos);
    if (args->kind != OBJ_TUPLE) return fail(u, "call arguments are not a tuple");
    const AllowedGlobal *g = &allowed_globals[fn->u.global];
    Obj **a = args->u.seq.items;
    size_t n = args->u.seq.n;
    Obj *result = NULL;
    switch (g->kind) {
    case G_ORDERED_DICT:
        if (n != 0) return fail(u, "OrderedDict with initial items is not supported");
        result = new_obj(u, OBJ_DICT);
        break;
    case G_REBUILD_TENSOR_V2:
    case G_REBUILD_TENSOR:
        if (newobj) break;
        if (g->kind == G_REBUILD_TENSOR_V2 ? (n != 6 && n != 7) : n != 4) {
            return sam_error(u->err, "pickle: %s.%s called with %zu arguments", g->module, g->name, n);
        }
        result = rebuild_tensor(u, a);
        break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (newobj) break;
        if (n != (g->kind == G_REBUILD_PARAMETER ? 3u : 4u) || a[0]->kind != OBJ_TENSOR) {
            return sam_error(u->err, "pickle: %s.%s expects a tensor and %d more arguments", g->module, g->name,
                             g->kind == G_REBUILD_PARAMETER ? 2 : 3);
        }
        result = a[0];  // a Parameter is its tensor; requires_grad is irrelevant here
        break;
    case G_STORAGE:
    case G_DTYPE:
        return sam_error(u->err, "pickle: global '%s.%s' may only appear in a storage persistent id", g->module, g->name);
    }
    if (!result && newobj) return sam_error(u->err, "pickle: NEWOBJ on '%s.%s' is not supported", g->module, g->name);
    if (!result) return -1;
    return push(u, result);
}

// ('storage', storage_type, key, location, numel) -> a storage reference.
static int persistent_load(Unpickler *u) {
    Obj *pid = pop(u);
    if (!pid) return -1;
    if (pid->kind != OBJ_TUPLE || pid->u.seq.n != 5) return fail(u, "persistent id is not a 5-tuple storage reference");
    Obj **a = pid->u.seq.items;
    if (a[0]->kind != OBJ_STR || a[0]->u.str.len != 7 || memcmp(a[0]->u.str.p, "storage", 7) != 0) {
        return fail(u, "persistent id is not a storage");
    }
    if (a[1]->kind != OBJ_GLOBAL || (allowed_globals[a[1]->u.global].kind != G_STORAGE &&
                                     allowed_globals[a[1]->u.global].kind != G_DTYPE)) {
        return fail(u, "persistent id storage type is not a torch storage class or dtype");
    }
    if (a[2]->kind != OBJ_STR || a[2]->u.str.len == 0 || a[2]->u.str.len > 64) return fail(u, "persistent id key is not a short string");
    if (a[3]->kind != OBJ_STR) return fail(u, "persistent id location is not a string");
    if (a[4]->kind != OBJ_INT || a[4]->u.i < 0) return fail(u, "persistent id element count is not a non-negative int");
    Obj *s = new_obj(u, OBJ_STORAGE);
    if (!s) return -1;
    s->u.storage.key = a[2]->u.str.p;
    s->u.storage.key_len = a[2]->u.str.len;
    s->u.storage.numel = a[4]->u.i;
    s->u.storage.dtype = allowed_globals[a[1]->u.global].dtype;
    return push(u, s);
}

static int build(Unpickler *u) {
    Obj *state = pop(u);
    if (!state) return -1;
    Obj *o = top(u);
    if (!o) return -1;
    // OrderedDict state is the _metadata attribute and tensor state is
    // Python attributes: neither matters for inference weights.
    if (o->kind != OBJ_DICT && o->kind != OBJ_TENSOR) {
        return sam_error(u->err, "pickle: BUILD on a %s is not supported", kind_names[o->kind]);
    }
    return 0;
}

static int step(Unpickler *u, uint8_t op) {
    const uint8_t *p;
    size_t mark = 0;
    Obj *o, *a, *b;
    switch (op) {
    case 0x80: return take(u, 1) ? 0 : -1;  // PROTO
    case 0x95: return take(u, 8) ? 0 : -1;  // FRAME: the data is contiguous anyway
    case '(':
        if (u->nmarks == u->marks_cap) {
            if (u->marks_cap >= MAX_MARKS) return fail(u, "MARKs nested too deeply");
            size_t cap = u->marks_cap ? u->marks_cap * 2 : 16;
            size_t *m = realloc(u->marks, cap * sizeof *m);
            if (!m) return fail(u, "out of memory");
            u->marks = m;
            u->marks_cap = cap;
        }
        u->marks[u->nmarks++] = u->sp;
        return 0;
    case '0': return pop(u) ? 0 : -1;
    case '1': return pop_mark(u, &mark) ? -1 : (u->sp = mark, 0);
    case '2': return (o = top(u)) ? push(u, o) : -1;
    case 'N': return push(u, new_obj(u, OBJ_NONE));
    case 0x88:
    case 0x89:
        if (!(o = new_obj(u, OBJ_BOOL))) return -1;
        o->u.i = op == 0x88;
        return push(u, o);
    case 'J': return (p = take(u, 4)) ? push_int(u, (int32_t)(uint32_t)le(p, 4)) : -1;
    case 'K': return (p = take(u, 1)) ? push_int(u, p[0]) : -1;
    case 'M': return (p = take(u, 2)) ? push_int(u, (int64_t)le(p, 2)) : -1;
    case 0x8a: return (p = take(u, 1)) ? push_long(u, p[0]) : -1;
    case 0x8b: return (p = take(u, 4)) ? push_long(u, (size_t)le(p, 4)) : -1;
    case 'G': {
        if (!(p = take(u, 8))) return -1;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | p[i];  // big-endian
        if (!(o = new_obj(u, OBJ_FLOAT))) return -1;
        memcpy(&o->u.f, &bits, sizeof bits);
        return push(u, o);
    }
    case 'X': return (p = take(u, 4)) ? push_str(u, OBJ_STR, (size_t)le(p, 4)) : -1;
    case 0x8c: return (p = take(u, 1)) ? push_str(u, OBJ_STR, p[0]) : -1;
    case 0x8d: return (p = take(u, 8)) ? push_str(u, OBJ_STR, (size_t)le(p, 8)) : -1;
    case 'T': return (p = take(u, 4)) ? push_str(u, OBJ_STR, (size_t)le(p, 4)) : -1;  // py2 str
    case 'U': return (p = take(u, 1)) ? push_str(u, OBJ_STR, p[0]) : -1;
    case 'B': return (p = take(u, 4)) ? push_str(u, OBJ_BYTES, (size_t)le(p, 4)) : -1;
    case 'C': return (p = take(u, 1)) ? push_str(u, OBJ_BYTES, p[0]) : -1;
    case 0x8e:
    case 0x96: return (p = take(u, 8)) ? push_str(u, OBJ_BYTES, (size_t)le(p, 8)) : -1;
    case '}': return push(u, new_obj(u, OBJ_DICT));
    case ']': return push(u, new_obj(u, OBJ_LIST));
    case ')': return push(u, new_obj(u, OBJ_TUPLE));
    case 't':
    case 'l':
    case 'd':
        if (pop_mark(u, &mark)) return -1;
        if (op == 'd' && (u->sp - mark) % 2) return fail(u, "DICT with an odd number of items");
        return make_collection(u, op == 't' ? OBJ_TUPLE : op == 'l' ? OBJ_LIST : OBJ_DICT, mark);
    case 0x85: return make_tuple_n(u, 1);
    case 0x86: return make_tuple_n(u, 2);
    case 0x87: return make_tuple_n(u, 3);
    case 'a':
        if (!(b = pop(u)) || !(a = top(u))) return -1;
        if (a->kind != OBJ_LIST) return fail(u, "APPEND target is not a list");
        return seq_push(u, a, b);
    case 'e': return extend_from_mark(u, OBJ_LIST);
    case 's':
        if (!(b = pop(u)) || !(a = pop(u)) || !(o = top(u))) return -1;
        if (o->kind != OBJ_DICT) return fail(u, "SETITEM target is not a dict");
        return seq_push(u, o, a) ? -1 : seq_push(u, o, b);
    case 'u': return extend_from_mark(u, OBJ_DICT);
    case 'c': {
        const char *mod, *name;
        size_t mod_len, name_len;
        if (!(mod = take_line(u, &mod_len)) || !(name = take_line(u, &name_len))) return -1;
        return find_global(u, mod, mod_len, name, name_len);
    }
    case 0x93:
        if (!(b = pop(u)) || !(a = pop(u))) return -1;
        if (a->kind != OBJ_STR || b->kind != OBJ_STR) return fail(u, "STACK_GLOBAL needs two strings");
        return find_global(u, a->u.str.p, a->u.str.len, b->u.str.p, b->u.str.len);
    case 'R': return call_global(u, 0);
    case 0x81: return call_global(u, 1);
    case 'b': return build(u);
    case 'Q': return persistent_load(u);
    case 'q': return (p = take(u, 1)) ? memo_put(u, p[0]) : -1;
    case 'r': return (p = take(u, 4)) ? memo_put(u, le(p, 4)) : -1;
    case 0x94: return memo_put(u, u->memo_len);  // MEMOIZE
    case 'h': return (p = take(u, 1)) ? memo_get(u, p[0]) : -1;
    case 'j': return (p = take(u, 4)) ? memo_get(u, le(p, 4)) : -1;
    default:
        return sam_error(u->err, "pickle: unsupported opcode 0x%02x at byte %zu", op, u->pos - 1);
    }
}

static int key_is(const Obj *k, const char *s) {
    size_t n = strlen(s);
    return k->kind == OBJ_STR && k->u.str.len == n && memcmp(k->u.str.p, s, n) == 0;
}

// Python semantics: the last assignment to a key wins.
static const Obj *dict_get(const Obj *d, const char *key) {
    const Obj *found = NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        if (key_is(d->u.seq.items[i], key)) found = d->u.seq.items[i + 1];
    }
    return found;
}

// Index of the first value that is not a tensor, or SIZE_MAX.
static size_t first_non_tensor(const Obj *d) {
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        if (d->u.seq.items[i + 1]->kind != OBJ_TENSOR) return i;
    }
    return SIZE_MAX;
}

static int cmp_key(const void *pa, const void *pb) {
    const Obj *a = *(const Obj *const *)pa, *b = *(const Obj *const *)pb;
    size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
    int c = n ? memcmp(a->u.str.p, b->u.str.p, n) : 0;
    if (c) return c;
    return (a->u.str.len > b->u.str.len) - (a->u.str.len < b->u.str.len);
}

// Keys must be distinct strings without NULs, since they become C names.
static int check_keys(Unpickler *u, const Obj *d) {
    size_t n = d->u.seq.n / 2;
    for (size_t i = 0; i < n; i++) {
        const Obj *k = d->u.seq.items[2 * i];
        if (k->kind != OBJ_STR) return sam_error(u->err, "pickle: state_dict key #%zu is a %s, not a string", i, kind_names[k->kind]);
        if (memchr(k->u.str.p, 0, k->u.str.len)) return sam_error(u->err, "pickle: state_dict key #%zu contains a NUL byte", i);
    }
    if (n < 2) return 0;
    const Obj **keys = malloc(n * sizeof *keys);
    if (!keys) return sam_error(u->err, "pickle: out of memory");
    for (size_t i = 0; i < n; i++) keys[i] = d->u.seq.items[2 * i];
    qsort(keys, n, sizeof *keys, cmp_key);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        if (cmp_key(&keys[i - 1], &keys[i]) == 0) {
            rc = sam_error(u->err, "pickle: duplicate state_dict key '%.*s'", (int)(keys[i]->u.str.len > 200 ? 200 : keys[i]->u.str.len), keys[i]->u.str.p);
        }
    }
    free(keys);
    return rc;
}

static int emit(Unpickler *u, const Obj *d, PickleTensorFn fn, void *user) {
    if (check_keys(u, d)) return -1;
    int rc = 0;
    for (size_t i = 0; i + 1 < d->u.seq.n && !rc; i += 2) {
        const Obj *k = d->u.seq.items[i];
        const TensorInfo *t = d->u.seq.items[i + 1]->u.tensor;
        const Obj *s = t->storage;
        char *name = malloc(k->u.str.len + 1);
        char key[65];
        if (!name) return sam_error(u->err, "pickle: out of memory");
        memcpy(name, k->u.str.p, k->u.str.len);
        name[k->u.str.len] = 0;
        memcpy(key, s->u.storage.key, s->u.storage.key_len);  // at most 64, checked on load
        key[s->u.storage.key_len] = 0;
        PickleTensor pt;
        memset(&pt, 0, sizeof pt);
        pt.name = name;
        pt.dtype = s->u.storage.dtype;
        pt.ndim = t->ndim;
        memcpy(pt.shape, t->shape, sizeof pt.shape);
        memcpy(pt.stride, t->stride, sizeof pt.stride);
        pt.storage_offset = t->offset;
        pt.storage_key = key;
        pt.storage_numel = s->u.storage.numel;
        rc = fn(user, &pt, u->err);
        free(name);
    }
    return rc;
}

static int not_a_tensor(Unpickler *u, const Obj *d, size_t i) {
    const Obj *k = d->u.seq.items[i];
    const Obj *v = d->u.seq.items[i + 1];
    if (k->kind != OBJ_STR) return sam_error(u->err, "pickle: checkpoint entry #%zu is a %s, not a tensor", i / 2, kind_names[v->kind]);
    return sam_error(u->err, "checkpoint entry '%.*s' is a %s, not a tensor (only flat state_dicts of tensors are supported)",
                     (int)(k->u.str.len > 200 ? 200 : k->u.str.len), k->u.str.p, kind_names[v->kind]);
}

static int extract(Unpickler *u, const Obj *root, PickleTensorFn fn, void *user) {
    if (root->kind != OBJ_DICT) {
        return sam_error(u->err, "checkpoint top-level object is a %s, not a state_dict", kind_names[root->kind]);
    }
    size_t bad = first_non_tensor(root);
    if (bad == SIZE_MAX) return emit(u, root, fn, user);
    // Training checkpoints wrap the weights: {"model": state_dict, "epoch": ...}.
    int has_tensor = 0;
    for (size_t i = 0; i + 1 < root->u.seq.n; i += 2) has_tensor |= root->u.seq.items[i + 1]->kind == OBJ_TENSOR;
    static const char *const wrappers[] = {"model", "state_dict"};
    for (int w = 0; w < 2 && !has_tensor; w++) {
        const Obj *inner = dict_get(root, wrappers[w]);
        if (!inner || inner->kind != OBJ_DICT || inner->u.seq.n == 0) continue;
        size_t inner_bad = first_non_tensor(inner);
        if (inner_bad == SIZE_MAX) return emit(u, inner, fn, user);
        return not_a_tensor(u, inner, inner_bad);
    }
    return not_a_tensor(u, root, bad);
}

int pickle_load_state_dict(const uint8_t *buf, size_t len, PickleTensorFn fn, void *user,
                           SamError *err) {
    Unpickler u;
    memset(&u, 0, sizeof u);
    u.buf = buf;
    u.len = len;
    u.err = err;
    int rc = -1;
    for (;;) {
        if (u.pos >= len) {
            fail(&u, "data ends without STOP");
            goto done;
        }
        uint8_t op = buf[u.pos++];
        if (op == '.') break;
        if (step(&u, op)) goto done;
    }
    if (u.sp == 0) {
        fail(&u, "STOP with an empty stack");
        goto done;
    }
    rc = extract(&u, u.stack[u.sp - 1], fn, user);
done:
    free_objects(&u);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    return rc;
}
