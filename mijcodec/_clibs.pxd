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


cdef extern from "zstd.h" nogil:
    ctypedef struct ZSTD_DStream:
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

    ZSTD_DStream* ZSTD_createDStream()
    size_t ZSTD_freeDStream(ZSTD_DStream* zds)
    size_t ZSTD_initDStream(ZSTD_DStream* zds)
    size_t ZSTD_DCtx_reset(ZSTD_DStream* dctx, ZSTD_ResetDirective reset)
    size_t ZSTD_decompressStream(ZSTD_DStream* zds, ZSTD_outBuffer* output, ZSTD_inBuffer* input)
    unsigned ZSTD_isError(size_t code)
    const char* ZSTD_getErrorName(size_t code)
    const char* ZSTD_versionString()
