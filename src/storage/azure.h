/*
 * azure.h: the Azure Blob Storage driver (block blobs).
 *
 * URL form: "azure://container/prefix".  Settings ([repo:NAME] keys, see
 * options.def) with the Azure CLI's environment as fallback:
 * azure-account (AZURE_STORAGE_ACCOUNT), azure-key (AZURE_STORAGE_KEY:
 * Shared Key), azure-sas (AZURE_STORAGE_SAS_TOKEN), azure-endpoint (the
 * BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING, which may also give
 * AccountName, AccountKey and SharedAccessSignature), azure-ca-file
 * (SSL_CERT_FILE), azure-verify-tls, azure-block-size, storage-upload-jobs,
 * storage-list-page-size, http-retries, http-timeout.
 *
 * The endpoint defaults to https://ACCOUNT.blob.core.windows.net; an
 * endpoint with a path (emulators: https://127.0.0.1:10000/devstoreaccount1)
 * is used as given.  No request is sent at open; storage_create creates the
 * container when it is missing.
 */
#ifndef PV_STORAGE_AZURE_H
#define PV_STORAGE_AZURE_H

#include "storage/http.h"
#include "storage/storage.h"

int storage_azure_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts);

/* The next listing page's marker from a List Blobs answer (exposed for the fuzz target). */
int az_list_next(const HttpResponse *resp, Buf *token);

#endif
