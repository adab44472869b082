/*
 * s3.h: the S3 storage driver (AWS S3 and S3-compatible stores: MinIO,
 * Ceph, R2, Swift's s3api; GCS through its interoperability API).
 *
 * URL forms: "s3://bucket/prefix" and "gs://bucket/prefix" (the same
 * driver with Google's endpoint, region "auto" and path-style requests).
 * Settings ([repo:NAME] keys, see options.def) with the AWS CLI's
 * environment as fallback: s3-endpoint (AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL), s3-region (AWS_REGION, AWS_DEFAULT_REGION), s3-key /
 * s3-key-secret / s3-token (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, then the AWS_PROFILE section of
 * AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), s3-ca-file
 * (AWS_CA_BUNDLE, SSL_CERT_FILE), s3-verify-tls, s3-bucket-style,
 * s3-storage-class, s3-sse, s3-part-size, s3-if-none-match,
 * storage-upload-jobs, storage-list-page-size, http-retries, http-timeout.
 *
 * The open functions only parse settings: no request is sent until the
 * first operation (storage_create checks the bucket, creating it if it is
 * missing).
 */
#ifndef PV_STORAGE_S3_H
#define PV_STORAGE_S3_H

#include "storage/objstore.h"
#include "storage/storage.h"

/* rest: the URL after "s3://"; url: the whole URL; opts may be NULL. */
int storage_s3_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts);
int storage_gs_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts);

/* Readers of S3's XML answers (exposed for the fuzz target): the next page's token, DeleteObjects errors. */
int s3_list_next(const HttpResponse *resp, Buf *token);
int s3_delete_errors(const ObjStore *os, const HttpResponse *resp);

#endif
