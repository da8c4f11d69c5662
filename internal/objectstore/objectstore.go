// Package objectstore stores and removes upload objects in an S3 bucket
// through aws-sdk-go-v2. The same code talks to AWS S3, to S3-compatible
// servers and to the embedded server (package embeds3).
package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Config says where the bucket is. Credentials come from the SDK's standard
// chain (environment, shared files, instance roles) unless Credentials is set.
type Config struct {
	Bucket         string
	Region         string
	Endpoint       string // empty for AWS S3
	ForcePathStyle bool
	Credentials    aws.CredentialsProvider
	HTTPClient     *http.Client
}

// NewClient builds an S3 client for cfg.
func NewClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		// The SDK's default since 2025 adds CRC32 checksums to every request
		// (aws-chunked trailers) and validates them on responses. Several
		// S3-compatible servers reject or mangle those, so only send checksums
		// where an operation requires one; AWS S3 accepts both.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
	}), nil
}

// StaticCredentials returns a provider for a fixed key pair.
func StaticCredentials(accessKeyID, secretAccessKey string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, "")
}

// Store puts objects into one bucket and deletes them from any.
type Store struct {
	client *s3.Client
	bucket string
}

// New returns a Store writing new objects to bucket.
func New(client *s3.Client, bucket string) *Store {
	return &Store{client: client, bucket: bucket}
}

// Bucket is where Put stores new objects.
func (s *Store) Bucket() string { return s.bucket }

// Client is the underlying S3 client.
func (s *Store) Client() *s3.Client { return s.client }

// Put stores body (size bytes) under key in the store's bucket. body must be
// seekable so that the request can be signed and retried.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put object %q: %w", key, err)
	}
	return nil
}

// Delete removes the object; an object that is already gone counts as
// removed, so that retries are safe.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	return nil
}

// Exists reports whether the object is in the bucket.
func (s *Store) Exists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
	})
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("head object %q: %w", key, err)
	}
	return true, nil
}

// EnsureBucket creates the store's bucket unless it exists.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %q: %w", s.bucket, err)
	}
	return nil
}

// isNotFound reports whether err says the object (or bucket) does not exist.
// HeadObject has no body, so its 404 arrives as a generic API error.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}
