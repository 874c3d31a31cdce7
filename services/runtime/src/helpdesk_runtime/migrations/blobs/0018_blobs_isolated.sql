-- A file's key starts with its tenant's id: "<tenant>/<name>" (blobs.BlobStore).
SELECT helpdesk_isolate('blobs', 'split_part(key, ''/'', 1)');
