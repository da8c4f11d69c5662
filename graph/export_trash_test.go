package graph

// SetBeforeTakeBack makes every restoreUpload of r call f between its read
// of the trash entry and taking back the upload's purge.
func SetBeforeTakeBack(r *Resolver, f func()) { r.beforeTakeBack = f }
