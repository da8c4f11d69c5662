package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/scope"
)

// commandLine is one run of the command line: its environment, its output, and
// what the binary knows of its own build.
type commandLine struct {
	lookupEnv      func(string) (string, bool)
	stdout, stderr io.Writer
	buildInfo      func() (*debug.BuildInfo, bool)
}

// exitError asks for an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errDrift is reconcile's answer when it found drift: its report says
// what, and the exit status tells cron and CI.
var errDrift = &exitError{code: 1, err: errors.New("reconcile found drift")}

// errorExitStatus, a command annotation, is the exit status of its errors
// when not 1.
const errorExitStatus = "error-exit-status"

// exitStatus prints err, if any, to stderr and returns the process's exit
// status: 0 without error, 1 for most errors, reconcile's 1 and 2.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if !errors.Is(err, errDrift) {
		fmt.Fprintln(stderr, "error:", err)
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// run parses the command line and runs the command it names.
func (c *commandLine) run(ctx context.Context, args []string) error {
	root := c.rootCommand()
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var e *exitError
	if err != nil && !errors.As(err, &e) && cmd != nil && cmd.Annotations[errorExitStatus] == "2" {
		return &exitError{code: 2, err: err}
	}
	return err
}

// rootCommand builds the command tree. Serving is the root itself: the
// binary run with no command serves, as it always has.
func (c *commandLine) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "uploads",
		Short: "Delete what you uploaded, exactly once, with nothing left behind",
		Long: `uploads serves the upload deletion service: GraphQL at /graphql (with the
playground at /), the REST contract at DELETE /delete-upload-api, health at
/healthz and /readyz, and metrics at /metrics. With no command, it serves.`,
		Args:          c.noArgs,
		SilenceErrors: true, // exitStatus prints them
		SilenceUsage:  true, // an error says where help is instead
		Version:       "-",  // the template below prints it
	}
	cfg := c.withSettings(root, config.All)
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		stopTracing, err := startTracing(cmd.Context(), cfg, c.lookupEnv, c.buildInfo, logger)
		if err != nil {
			return err
		}
		defer stopTracing()
		return serve(cmd.Context(), cfg, logger, c.stdout)
	}
	root.SetVersionTemplate(versionText(c.buildInfo()))
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetUsageFunc(usage)
	root.SetFlagErrorFunc(flagError)

	root.AddCommand(c.usersCommand(), c.keysCommand(), c.holdsCommand(), c.jobsCommand(), c.auditCommand(), c.receiptsCommand(), c.reconcileCommand(), c.versionCommand())
	return root
}

func (c *commandLine) usersCommand() *cobra.Command {
	users := &cobra.Command{Use: "users", Short: "Create, list, show, link and delete users", Args: c.noArgs, RunE: showHelp}
	users.AddCommand(
		c.databaseCommand(admin.UsersCreate, "create (--email EMAIL | --subject SUBJECT [--email EMAIL])",
			"Create a user, with an API key or a subject they sign in as",
			`Creates a user. With --email alone, the user gets an API key, shown once.
With --subject, the user signs in at the issuer AUTH_ISSUER names, as that
subject (the sub claim of their access tokens), and no API key is made;
--email is then optional. Issue keys later with: uploads keys create.`,
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.Email, "email", "", "email address of the new user (required without --subject)")
				cmd.Flags().StringVar(&o.Subject, "subject", "", "the user's subject (sub claim) at AUTH_ISSUER; no API key is made")
				keyFlags(cmd, &o.Key, " (not with --subject)")
			}),
		c.databaseCommand(admin.UsersList, "list", "List users with their counts of active keys and uploads", "", nil),
		c.databaseCommand(admin.UsersShow, "show (--id USER_ID | --email EMAIL)", "Show a user, their sign-in identities and API keys (never the secrets)", "",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.ID, "id", "", "id of the user (usr_…)")
				cmd.Flags().StringVar(&o.Email, "email", "", "email address of the user")
			}),
		c.databaseCommand(admin.UsersLink, "link --id USER_ID --subject SUBJECT", "Let a user sign in: link a subject at AUTH_ISSUER to them",
			`Links the identity (AUTH_ISSUER, SUBJECT) to an existing user, so that
access tokens with that sub claim act as them. An identity belongs to one
user: linking another user's is an error; linking it again to the same user
changes nothing.`,
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.ID, "id", "", "id of the user (usr_…) (required)")
				cmd.Flags().StringVar(&o.Subject, "subject", "", "the subject (sub claim) at AUTH_ISSUER (required)")
			}),
		c.usersDeleteCommand(),
	)
	return users
}

func (c *commandLine) holdsCommand() *cobra.Command {
	holdsCmd := &cobra.Command{Use: "holds", Short: "Place, release and list legal holds", Args: c.noArgs, RunE: showHelp}
	holdsCmd.AddCommand(
		c.databaseCommand(admin.HoldsPlace, "place (--upload UPLOAD_ID | --user USER_ID) --reason TEXT [--until DATE]",
			"Hold an upload, or all of a user's uploads, against every delete",
			`Places a legal hold: until it is released (or its --until passes), no path
deletes what it covers (the REST delete answers 409, GraphQL deletes HELD,
batch and filter deletes, deletion jobs and the janitor skip it, and users
delete refuses its user). A hold on a user covers their uploads present and
future. An upload in the trash can be held: it stays there, restorable,
until released. --until takes a date (held through that day, UTC) or an
RFC 3339 time.`,
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.UploadID, "upload", "", "id of the upload to hold (upl_…)")
				cmd.Flags().StringVar(&o.UserID, "user", "", "id of the user to hold (usr_…): all their uploads")
				cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required)")
				cmd.Flags().StringVar(&o.Until, "until", "", "when the hold lapses by itself: 2027-06-30 or an RFC 3339 time (default: when released)")
			}),
		c.databaseCommand(admin.HoldsRelease, "release --id HOLD_ID", "Release a hold", "Releases a hold; what it covered can be deleted again, unless another hold\ncovers it. The hold stays listed, with who released it and when.",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.ID, "id", "", "id of the hold (hold_…) (required)")
			}),
		c.databaseCommand(admin.HoldsList, "list [--user USER_ID]", "List holds, released ones included", "",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.UserID, "user", "", "only the holds of this user and their uploads")
			}),
	)
	return holdsCmd
}

func (c *commandLine) keysCommand() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys", Args: c.noArgs, RunE: showHelp}
	keys.AddCommand(
		c.databaseCommand(admin.KeysCreate, "create --user USER_ID [--scope SCOPES] [--expires WHEN]", "Issue another API key for a user",
			`Issues an API key, shown once. Without --scope the key has every scope,
including scopes added in later releases; with it, only those named:
`+strings.Join(scope.Known(), ", ")+`.
Without --expires it never expires.`,
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.UserID, "user", "", "id of the user (usr_…) (required)")
				keyFlags(cmd, &o.Key, "")
			}),
		c.databaseCommand(admin.KeysList, "list --user USER_ID", "List a user's API keys, revoked ones included",
			"Lists a user's keys by id and prefix, with their scopes and expiry; the\nsecrets are never stored, so a lost key cannot be shown again: revoke it\nand create another.",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.UserID, "user", "", "id of the user (usr_…) (required)")
			}),
		c.databaseCommand(admin.KeysRevoke, "revoke --id KEY_ID", "Revoke an API key: it stops working at once", "",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.ID, "id", "", "id of the key (key_…) (required)")
			}),
	)
	return keys
}

func (c *commandLine) auditCommand() *cobra.Command {
	cmd := c.databaseCommand(admin.Audit, "audit --user USER_ID", "Show a user's audit trail, newest first",
		`Shows what happened to a user's uploads, newest first: created, deleted,
restored, purged, expired; by which API key (its id, never the key), or by
the cli, the janitor or the purger; through which interface; in which
request. An erased user's trail stays until AUDIT_RETENTION prunes it.`,
		func(cmd *cobra.Command, o *admin.Options) {
			cmd.Flags().StringVar(&o.UserID, "user", "", "id of the user (usr_…) (required)")
			cmd.Flags().IntVar(&o.Limit, "limit", 100, "most events shown; 0 for all")
		})
	cmd.AddCommand(c.databaseCommand(admin.AuditVerify, "verify [--user USER_ID]", "Check that no audit event was changed, removed or reordered",
		`Walks every user's chain of audit events (or one user's), in id order, a
page at a time: each event's hash must be that of its fields and of the
event before it, and the last must be the chain's head. Events written
before the chain are counted and left unchecked; where AUDIT_RETENTION
pruned the oldest, the chain is checked from the first kept event.

Exit status: 0 when every chain is whole, 1 when one is not (the report
names each user's first event changed, removed or reordered) or on an
error.`,
		func(cmd *cobra.Command, o *admin.Options) {
			cmd.Flags().StringVar(&o.UserID, "user", "", "only this user's chain (usr_…)")
		}))
	return cmd
}

// withSettings gives cmd the settings in scope as flags, each read from its
// environment variable when the flag is not given, and returns where they
// are written. Settings out of scope keep their defaults.
func (c *commandLine) withSettings(cmd *cobra.Command, scope config.Scope) *config.Config {
	cfg := &config.Config{}
	settings := config.Register(cmd.Flags(), cfg, scope)
	// Every setting is read and checked here, before the command runs: a
	// wrong one stops it before anything is opened or written.
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := config.ApplyEnv(cmd.Flags(), settings, c.lookupEnv); err != nil {
			return err
		}
		return cfg.Check()
	}
	return cfg
}

// databaseCommand is a command that needs only the database: it takes the
// database's settings, --json, and the flags flags defines.
func (c *commandLine) databaseCommand(command admin.Command, use, short, long string, flags func(*cobra.Command, *admin.Options)) *cobra.Command {
	var opts admin.Options
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: c.noArgs}
	cfg := c.withSettings(cmd, config.ForDatabase|config.ForIdentities)
	if flags != nil {
		flags(cmd, &opts)
	}
	jsonFlag(cmd.Flags(), &opts.JSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		opts.Issuer = cfg.AuthIssuer
		if err := command.Check(opts); err != nil {
			return err // before the database is opened (and its file made)
		}
		return runCommand(cmd.Context(), cfg, command, opts, c.stdout)
	}
	return cmd
}

func (c *commandLine) usersDeleteCommand() *cobra.Command {
	var opts admin.Options
	cmd := &cobra.Command{
		Use:   "delete --id USER_ID [--detach]",
		Short: "Erase a user: their uploads (records and objects), keys and account",
		Long: `Erases a user, as a deletion job: revokes their keys at once, then the job
deletes every upload (records, then objects) through the same batched delete
as deleteUploads, and last the keys and the user.

The command follows the job to its end: a progress bar on a terminal, a line
a step otherwise, a JSON line a step with --json (the last one has the
job's final state and what was erased). A serving instance runs the job
if it takes it within 2 seconds; otherwise, or whenever nobody holds it,
the command runs it itself, so it finishes with or without a server.
Interrupted or killed, the job goes on in a server, or running the command
again follows it to its end. With --detach it prints the job's id and
returns: a server runs the job (see: uploads jobs watch).

A user with a legal hold in force (on them or on any of their uploads) is
refused, naming the holds, and nothing changes; with --except-held,
everything not held goes (their keys revoked) and the user stays, with what
is held.

Exit status: 0 when the user is erased (or was, by an earlier job), 1 when
the job FAILED or was CANCELED (the user stays, their keys revoked), 3 when
a hold refused it, or 1 on another error. It reaches the bucket, so it takes the same bucket settings as
the server.`,
		Args: c.noArgs,
	}
	cfg := c.withSettings(cmd, config.ForDatabase|config.ForBucket|config.ForDeletes)
	cmd.Flags().StringVar(&opts.ID, "id", "", "id of the user (usr_…) (required)")
	cmd.Flags().BoolVar(&opts.Detach, "detach", false, "print the job's id and return; a serving instance runs the job")
	cmd.Flags().BoolVar(&opts.ExceptHeld, "except-held", false, "erase all but what a legal hold keeps; the user stays")
	jsonFlag(cmd.Flags(), &opts.JSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := admin.CheckErase(opts); err != nil {
			return err
		}
		logger, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		err = runWithApp(cmd.Context(), cfg, logger, func(a *app.App) error {
			return admin.RunErase(cmd.Context(), a.Client, a.Jobs, logger, opts, c.stdout)
		})
		if held := (*admin.HeldError)(nil); errors.As(err, &held) {
			return &exitError{code: 3, err: err}
		}
		return err
	}
	return cmd
}

func (c *commandLine) jobsCommand() *cobra.Command {
	jobsCmd := &cobra.Command{Use: "jobs", Short: "List, show, cancel and watch deletion jobs (everyone's)", Args: c.noArgs, RunE: showHelp}
	jobID := func(cmd *cobra.Command, o *admin.Options) {
		cmd.Flags().StringVar(&o.ID, "id", "", "id of the job (job_…) (required)")
	}
	jobsCmd.AddCommand(
		c.databaseCommand(admin.JobsList, "list [--user USER_ID] [--status STATUS,…]", "List deletion jobs, newest first", "",
			func(cmd *cobra.Command, o *admin.Options) {
				cmd.Flags().StringVar(&o.UserID, "user", "", "only the jobs of this user (usr_…)")
				cmd.Flags().StringSliceVar(&o.Statuses, "status", nil, "only jobs in these statuses: QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED")
				cmd.Flags().IntVar(&o.Limit, "limit", 100, "most jobs shown")
			}),
		c.databaseCommand(admin.JobsShow, "show --id JOB_ID", "Show a deletion job: its status and counts", "", jobID),
		c.databaseCommand(admin.JobsCancel, "cancel --id JOB_ID", "Cancel a deletion job: it stops between batches",
			`Cancels a QUEUED or RUNNING job at once: a batch being deleted rolls back,
what was deleted stays deleted. A job that has ended is left as it is.`, jobID),
		c.databaseCommand(admin.JobsWatch, "watch --id JOB_ID", "Follow a deletion job until it ends",
			`Shows a job's progress until it ends: a progress bar on a terminal, a line a
step otherwise, a JSON line a step with --json. It only watches: a serving
instance (or users delete) runs the job.

Exit status: 0 when the job SUCCEEDED, 1 when it FAILED or was CANCELED.`, jobID),
	)
	return jobsCmd
}

func (c *commandLine) reconcileCommand() *cobra.Command {
	var opts reconcileOptions
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Find drift between the bucket and the database (exit 0 clean, 1 drift, 2 error)",
		Long: `Compares the bucket with the database and reports orphaned objects, orphaned
multipart uploads, missing objects, stuck uploads and, on a bucket with S3
Object Lock, held uploads whose object lacks the legal hold. With --repair, it
queues orphans older than --grace for the purger of a running service, and
unmirrored holds for its mirror; it never deletes anything itself.

Exit status: 0 when it found no drift, 1 when it found some (repaired or
not), 2 when it could not tell (an error), so that cron and CI can act on it.`,
		Args:        c.noArgs,
		Annotations: map[string]string{errorExitStatus: "2"},
	}
	cfg := c.withSettings(cmd, config.ForDatabase|config.ForBucket)
	jsonFlag(cmd.Flags(), &opts.JSON)
	cmd.Flags().BoolVar(&opts.Repair, "repair", false, "queue orphans older than --grace for the purger")
	opts.Grace = reconcile.DefaultGrace
	cmd.Flags().Var((*graceValue)(&opts.Grace), "grace",
		"orphans younger than this are never queued: an upload in progress looks orphaned for a moment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		return runReconcile(cmd.Context(), cfg, logger, opts, c.stdout)
	}
	return cmd
}

// reconcileOptions are reconcile's own flags.
type reconcileOptions struct {
	JSON, Repair bool
	Grace        time.Duration
}

// graceValue is --grace: a duration above zero. reconcile.Run takes zero
// for its default, so a zero the operator typed would silently become an
// hour; a negative one would queue what is being uploaded.
type graceValue time.Duration

func (g *graceValue) String() string { return time.Duration(*g).String() }
func (g *graceValue) Type() string   { return "duration" }
func (g *graceValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("want a duration above zero, such as 10m or 1h")
	}
	*g = graceValue(d)
	return nil
}

func (c *commandLine) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version and the VCS revision it was built from",
		Args:  c.noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(c.stdout, versionText(c.buildInfo()))
			return err
		},
	}
}

func jsonFlag(fs *pflag.FlagSet, p *bool) {
	fs.BoolVar(p, "json", false, "print JSON instead of text")
}

// showHelp is the action of a command that only groups others.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// noArgs rejects arguments: every command takes flags only, so an argument
// is a mistyped command.
func (c *commandLine) noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on the root
	if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", suggestions[0])
	}
	return fmt.Errorf("%s (see '%s --help')", msg, cmd.CommandPath())
}

// flagError words a command line error as a setting error is worded
// ("--rate-limit=abc: want a whole number"), and says where help is.
func flagError(cmd *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		return fmt.Errorf("--%s=%s: %w", invalid.GetFlag().Name, invalid.GetValue(), errors.Unwrap(invalid))
	}
	return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
}

// versionText describes the build: the module's version, and the VCS
// revision it was built from when the build recorded one (go build in a
// git checkout does, unless -buildvcs=false).
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "uploads: no build information in this binary\n"
	}
	var b strings.Builder
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "uploads %s\n", version)
	if info.Main.Path != "" {
		fmt.Fprintf(&b, "module:   %s\n", info.Main.Path)
	}
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	switch revision := vcs["vcs.revision"]; {
	case revision == "":
		b.WriteString("revision: unknown (built outside a VCS checkout, or with -buildvcs=false)\n")
	default:
		fmt.Fprintf(&b, "revision: %s", revision)
		if t := vcs["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if vcs["vcs.modified"] == "true" {
			b.WriteString(", with uncommitted changes")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "go:       %s\n", info.GoVersion)
	return b.String()
}
