# C declarations of the libraries the compiled codec calls directly.

cdef extern from "zlib.h" nogil:
    ctypedef unsigned char Bytef
    ctypedef unsigned int uInt
    ctypedef unsigned long uLong

    ctypedef struct z_stream:
        Bytef* next_in
        uInt avail_in
        uLong total_in
        Bytef* next_out
        uInt avail_out
        uLong total_out
        char* msg
        void* zalloc
        void* zfree
        void* opaque
        int data_type
        uLong adler
        uLong reserved

    int Z_OK
    int Z_STREAM_END
    int Z_NEED_DICT
    int Z_BUF_ERROR
    int Z_DATA_ERROR
    int Z_MEM_ERROR
    int Z_SYNC_FLUSH

    const char* zlibVersion()
    int inflateInit2(z_stream* strm, int windowBits)
    int inflate(z_stream* strm, int flush)
    int inflateEnd(z_stream* strm)
    int inflateReset(z_stream* strm)


# zlib-ng's native API (zng_* names, its own stream type), linked when setup.py
# found zlib-ng at build time (it then defines MIJ_HAVE_ZLIBNG and links
# libz-ng). Without it, MIJ_ZLIBNG is 0 and these names are stubs that are
# never called: the decoder refuses inflater="zlib-ng" first.
cdef extern from *:
    """
    #ifdef MIJ_HAVE_ZLIBNG
    /* zlib.h is included already: its inflateBack callback typedefs would
       clash with zlib-ng.h's, which nothing here uses */
    #define in_func mij_zng_in_func
    #define out_func mij_zng_out_func
    #include <zlib-ng.h>
    #undef in_func
    #undef out_func
    #define MIJ_ZLIBNG 1
    #else
    #define MIJ_ZLIBNG 0
    typedef struct {
        const unsigned char *next_in; uint32_t avail_in; size_t total_in;
        unsigned char *next_out; uint32_t avail_out; size_t total_out;
        const char *msg; void *zalloc; void *zfree; void *opaque;
    } zng_stream;
    static int zng_inflateInit2(zng_stream *s, int w) { (void)s; (void)w; return -6; }
    static int zng_inflate(zng_stream *s, int f) { (void)s; (void)f; return -2; }
    static int zng_inflateEnd(zng_stream *s) { (void)s; return 0; }
    static int zng_inflateReset(zng_stream *s) { (void)s; return -2; }
    static const char *zlibng_version(void) { return ""; }
    #endif
    """
    ctypedef struct zng_stream:
        const unsigned char* next_in
        unsigned int avail_in
        unsigned char* next_out
        unsigned int avail_out
        const char* msg
        void* zalloc
        void* zfree
        void* opaque

    int MIJ_ZLIBNG
    int zng_inflateInit2(zng_stream* strm, int windowBits) nogil
    int zng_inflate(zng_stream* strm, int flush) nogil
    int zng_inflateEnd(zng_stream* strm) nogil
    int zng_inflateReset(zng_stream* strm) nogil
    const char* zlibng_version()
