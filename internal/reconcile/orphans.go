package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/safedelete/uploads/ent"
)

// listUnreferencedMultipart lists the bucket's incomplete multipart
// uploads, counts those of keys refs knows, and returns the others. A
// server that does not implement the listing is noted in the report; any
// other error fails the run, as a failed object listing does.
func listUnreferencedMultipart(ctx context.Context, s3Client *s3.Client, bucket string, pageSize int, refs references, report *Report) ([]OrphanedMultipartUpload, error) {
	var unknown []OrphanedMultipartUpload
	input := &s3.ListMultipartUploadsInput{
		Bucket:     aws.String(bucket),
		MaxUploads: aws.Int32(int32(min(pageSize, 1000))),
	}
	for {
		page, err := s3Client.ListMultipartUploads(ctx, input)
		if errorCode(err) == "InvalidArgument" && aws.ToString(input.UploadIdMarker) != "" {
			// Some servers (versitygw 1.8) cannot continue a listing inside
			// one key's uploads and refuse their own upload-id marker. The
			// rest of that key's uploads are skipped, and the report says so.
			report.MultipartUploadsSkipped = append(report.MultipartUploadsSkipped, aws.ToString(input.KeyMarker))
			input.UploadIdMarker = nil
			page, err = s3Client.ListMultipartUploads(ctx, input)
		}
		switch code := errorCode(err); code {
		case "":
		case "NoSuchUpload":
			// The embedded server (gofakes3) answers so for a bucket that
			// never had a multipart upload.
			return unknown, nil
		case "NotImplemented", "MethodNotAllowed":
			report.MultipartUploadsNotListed = "the server answered ListMultipartUploads with " + code
			return unknown, nil
		default:
			return nil, fmt.Errorf("list multipart uploads of bucket %q: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			report.MultipartUploadsScanned++
			key := aws.ToString(u.Key)
			if r := refs[key]; r != nil {
				r.multipart++
				continue
			}
			unknown = append(unknown, OrphanedMultipartUpload{
				Key:               key,
				MultipartUploadID: aws.ToString(u.UploadId),
				Initiated:         aws.ToTime(u.Initiated).UTC(),
			})
		}
		if !aws.ToBool(page.IsTruncated) {
			return dropGone(ctx, s3Client, bucket, unknown, report)
		}
		// A truncated page must move the markers on, or the listing would
		// start over (no marker) or repeat forever (the same one).
		nextKey, nextID := aws.ToString(page.NextKeyMarker), aws.ToString(page.NextUploadIdMarker)
		if nextKey == "" || nextKey == aws.ToString(input.KeyMarker) && nextID == aws.ToString(input.UploadIdMarker) {
			return nil, fmt.Errorf("list multipart uploads of bucket %q: a truncated page without a new marker (%q, %q)", bucket, nextKey, nextID)
		}
		input.KeyMarker, input.UploadIdMarker = aws.String(nextKey), aws.String(nextID)
	}
}

// dropGone returns the listed multipart uploads that the server still
// holds. MinIO lists multipart uploads from a cache in memory that keeps an
// upload whose CompleteMultipartUpload was cut off (its client went away
// mid-request, as a SIGKILLed service does) although the upload was
// completed: until MinIO restarts or its stale-upload cleanup runs (24 h by
// default), the listing shows an upload that has no parts, that ListParts
// answers with NoSuchUpload, and that aborting does not remove. Reported, it
// would be drift that no repair can settle. Each candidate is asked for one
// part; only orphans get this request, so a clean bucket costs none.
func dropGone(ctx context.Context, s3Client *s3.Client, bucket string, listed []OrphanedMultipartUpload, report *Report) ([]OrphanedMultipartUpload, error) {
	held := listed[:0]
	for _, u := range listed {
		_, err := s3Client.ListParts(ctx, &s3.ListPartsInput{
			Bucket:   aws.String(bucket),
			Key:      aws.String(u.Key),
			UploadId: aws.String(u.MultipartUploadID),
			MaxParts: aws.Int32(1),
		})
		switch code := errorCode(err); code {
		case "", "NotImplemented", "MethodNotAllowed": // held, or no way to tell
			held = append(held, u)
		case "NoSuchUpload":
			report.MultipartUploadsGone++
		default:
			return nil, fmt.Errorf("list parts of multipart upload %q of %q: %w", u.MultipartUploadID, u.Key, err)
		}
	}
	return held, nil
}

// errorCode is S3's error code for err, "" for nil, and "?" for an error
// that carries none (a refused connection).
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "" {
		return apiErr.ErrorCode()
	}
	return "?"
}

// orphanedKey is what the listings found under one key that nothing in the
// database names: an object, incomplete multipart uploads, or both.
type orphanedKey struct {
	key       string
	object    *OrphanedObject
	multipart []OrphanedMultipartUpload
}

// groupByKey joins the orphaned objects and multipart uploads of each key,
// in key order, so that a key is settled (and queued) once.
func groupByKey(objects []OrphanedObject, multipart []OrphanedMultipartUpload) []*orphanedKey {
	byKey := map[string]*orphanedKey{}
	var keys []string
	get := func(key string) *orphanedKey {
		k := byKey[key]
		if k == nil {
			k = &orphanedKey{key: key}
			byKey[key] = k
			keys = append(keys, key)
		}
		return k
	}
	for i := range objects {
		get(objects[i].Key).object = &objects[i]
	}
	for _, u := range multipart {
		k := get(u.Key)
		k.multipart = append(k.multipart, u)
	}
	slices.Sort(keys)
	grouped := make([]*orphanedKey, len(keys))
	for i, key := range keys {
		grouped[i] = byKey[key]
	}
	return grouped
}

// settleOrphans settles each key and adds what is still orphaned to the
// report.
func settleOrphans(ctx context.Context, client *ent.Client, bucket string, keys []*orphanedKey, now time.Time, opts Options, report *Report) error {
	for _, k := range keys {
		orphaned, err := settleKey(ctx, client, bucket, k, now, opts)
		if err != nil {
			return err
		}
		if !orphaned {
			continue
		}
		if k.object != nil {
			report.OrphanedObjects = append(report.OrphanedObjects, *k.object)
		}
		report.OrphanedMultipartUploads = append(report.OrphanedMultipartUploads, k.multipart...)
	}
	return nil
}

// settleKey looks an orphaned key up again, now that the listings are done,
// and queues its purge if Repair is on and what it holds is old enough.
// orphaned is false when it turned out to be referenced after all.
//
// A purge that aborts the key's multipart uploads also deletes its object
// (no record names it), so it is queued only when both are past the grace
// period. An old object with young multipart uploads is queued alone; the
// uploads are left to a later run, once that purge is done.
func settleKey(ctx context.Context, client *ent.Client, bucket string, k *orphanedKey, now time.Time, opts Options) (orphaned bool, err error) {
	objectYoung := k.object != nil && now.Sub(k.object.LastModified) < opts.Grace
	multipartYoung := objectYoung
	for _, u := range k.multipart {
		multipartYoung = multipartYoung || now.Sub(u.Initiated) < opts.Grace
	}
	if k.object != nil {
		k.object.TooYoung = objectYoung
	}
	for i := range k.multipart {
		k.multipart[i].TooYoung = multipartYoung
	}
	abortAll := len(k.multipart) > 0 && !multipartYoung
	if opts.Repair && !objectYoung && (k.object != nil || abortAll) {
		queued, err := queuePurge(ctx, client, bucket, k.key, abortAll)
		if err != nil || !queued {
			return false, err
		}
		if k.object != nil {
			k.object.Queued = true
		}
		for i := range k.multipart {
			k.multipart[i].Queued = abortAll
		}
		return true, nil
	}
	referenced, err := isReferenced(ctx, client.Upload, client.ObjectPurge, bucket, k.key)
	if err != nil {
		return false, err
	}
	return !referenced, nil
}
