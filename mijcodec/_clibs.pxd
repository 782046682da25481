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


# libzstd's streaming decompression API, linked when setup.py found zstd.h and
# libzstd at build time (it then defines MIJ_HAVE_ZSTD). The codec decodes
# zstd-stream with it only when it is the libzstd release the fallback's
# decompressor (backports.zstd / compression.zstd) runs, so that both
# implementations keep agreeing on corrupt input; otherwise, and without it
# (MIJ_ZSTD is 0 and these are stubs never called), through that decompressor
# object.
cdef extern from *:
    """
    #ifdef MIJ_HAVE_ZSTD
    #include <zstd.h>
    #define MIJ_ZSTD 1
    #else
    #define MIJ_ZSTD 0
    typedef struct mij_zstd_dctx_s ZSTD_DCtx;
    typedef struct { const void *src; size_t size; size_t pos; } ZSTD_inBuffer;
    typedef struct { void *dst; size_t size; size_t pos; } ZSTD_outBuffer;
    typedef enum { ZSTD_reset_session_only = 1 } ZSTD_ResetDirective;
    static ZSTD_DCtx *ZSTD_createDCtx(void) { return NULL; }
    static size_t ZSTD_freeDCtx(ZSTD_DCtx *d) { (void)d; return 0; }
    static size_t ZSTD_DCtx_reset(ZSTD_DCtx *d, ZSTD_ResetDirective r) { (void)d; (void)r; return 0; }
    static size_t ZSTD_decompressStream(ZSTD_DCtx *d, ZSTD_outBuffer *o, ZSTD_inBuffer *i) { (void)d; (void)o; (void)i; return (size_t)-1; }
    static unsigned ZSTD_isError(size_t r) { return r > (size_t)-120; }
    static const char *ZSTD_getErrorName(size_t r) { (void)r; return "libzstd is not linked"; }
    static unsigned ZSTD_versionNumber(void) { return 0; }
    #endif
    """
    ctypedef struct ZSTD_DCtx:
        pass
    ctypedef struct ZSTD_inBuffer:
        const void* src
        size_t size
        size_t pos
    ctypedef struct ZSTD_outBuffer:
        void* dst
        size_t size
        size_t pos
    ctypedef enum ZSTD_ResetDirective:
        ZSTD_reset_session_only

    int MIJ_ZSTD
    ZSTD_DCtx* ZSTD_createDCtx() nogil
    size_t ZSTD_freeDCtx(ZSTD_DCtx* dctx) nogil
    size_t ZSTD_DCtx_reset(ZSTD_DCtx* dctx, ZSTD_ResetDirective reset) nogil
    size_t ZSTD_decompressStream(ZSTD_DCtx* zds, ZSTD_outBuffer* output, ZSTD_inBuffer* input) nogil
    unsigned ZSTD_isError(size_t code) nogil
    const char* ZSTD_getErrorName(size_t code) nogil
    unsigned ZSTD_versionNumber() nogil
