package objectstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// ObjectLockEnabled reports whether bucket has S3 Object Lock, which only
// a bucket created with it has. A server without Object Lock, or a bucket
// without it, answers false with no error; a failure to ask is an error.
func (s *Store) ObjectLockEnabled(ctx context.Context, bucket string) (bool, error) {
	out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(bucket)}, s.removals...)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ObjectLockConfigurationNotFoundError", "NotImplemented", "MethodNotAllowed", "InvalidRequest", "NoSuchObjectLockConfiguration":
			// No lock on the bucket, or none on the server (gofakes3,
			// versitygw's posix backend without it).
			return false, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("get object lock configuration of bucket %q: %w", bucket, err)
	}
	return out.ObjectLockConfiguration != nil &&
		out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled, nil
}

// SetLegalHold turns the legal hold of every version of exactly key on or
// off (delete markers have none). A key with no version left counts as
// done, as does a version removed meanwhile.
func (s *Store) SetLegalHold(ctx context.Context, bucket, key string, on bool) error {
	status := types.ObjectLockLegalHoldStatusOff
	if on {
		status = types.ObjectLockLegalHoldStatusOn
	}
	versions, err := s.objectVersions(ctx, bucket, key)
	if err != nil {
		return err
	}
	for _, versionID := range versions {
		_, err := s.client.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
			Bucket:    aws.String(bucket),
			Key:       aws.String(key),
			VersionId: aws.String(versionID),
			LegalHold: &types.ObjectLockLegalHold{Status: status},
		}, s.removals...)
		if err != nil && !isNotFound(err) && !isNoSuchVersion(err) {
			return fmt.Errorf("put legal hold %s on %q version %q: %w", status, key, versionID, err)
		}
	}
	return nil
}

// LegalHolds counts the versions of exactly key whose legal hold is on, and
// those whose is off (reconcile's check).
func (s *Store) LegalHolds(ctx context.Context, bucket, key string) (on, off int, err error) {
	versions, err := s.objectVersions(ctx, bucket, key)
	if err != nil {
		return 0, 0, err
	}
	for _, versionID := range versions {
		out, err := s.client.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{
			Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(versionID),
		})
		var apiErr smithy.APIError
		switch {
		case isNotFound(err) || isNoSuchVersion(err):
			continue
		case errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchObjectLockConfiguration":
			off++ // never set: S3 says so rather than OFF
		case err != nil:
			return 0, 0, fmt.Errorf("get legal hold of %q version %q: %w", key, versionID, err)
		case out.LegalHold != nil && out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn:
			on++
		default:
			off++
		}
	}
	return on, off, nil
}

// objectVersions lists the version ids of exactly key, not its delete
// markers (which carry no legal hold). A bucket with Object Lock is always
// versioned.
func (s *Store) objectVersions(ctx context.Context, bucket, key string) ([]string, error) {
	versions, err := s.listVersions(ctx, bucket, key, false)
	ids := make([]string, len(versions))
	for i, v := range versions {
		ids[i] = aws.ToString(v.VersionId)
	}
	return ids, err
}

// isNoSuchVersion reports whether err says the version is gone.
func isNoSuchVersion(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchVersion"
}
