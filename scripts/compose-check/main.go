// compose-check validates a compose file the way `docker compose config` does, without
// Docker: it loads the file with compose-go (the library docker compose itself uses),
// which checks it against the compose specification's JSON schema, interpolates
// variables from .env and the environment, and checks consistency (unknown services in
// depends_on, undeclared volumes, ...). On success it prints the resolved project as
// YAML; on failure a one-line error and exit status 1.
//
//	compose-check docker-compose.yml [docker-compose.shared.yml ...]
//
// Built by scripts/native/build.sh compose-check (this machine has no Docker engine
// and no compose plugin); used by tests/stack/test_static_agreement.py.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check <compose file> [<override file>...]")
		os.Exit(2)
	}
	// Later files are merged over the first, as `docker compose -f a -f b` does.
	files := make([]string, 0, len(os.Args)-1)
	for _, arg := range os.Args[1:] {
		file, err := filepath.Abs(arg)
		if err != nil {
			fail(err)
		}
		files = append(files, file)
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv,
		cli.WithEnvFiles(), // the default: .env beside the compose file
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
