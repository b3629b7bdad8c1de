
use builtin;
use str;

set edit:completion:arg-completer[idem] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'idem'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'idem'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Run a command, or replay its recorded outcome when nothing it depends on changed'
            cand status 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing'
            cand explain 'Say which dependencies changed since the last record of this task'
            cand stats 'Hits, misses, time saved and cache size'
            cand list 'Recent records, one line each'
            cand show 'One record whole: dependencies, outputs, stdout and stderr'
            cand gc 'Evict least-recently-used records and delete unreferenced blobs'
            cand forget 'Delete the records of one task, or of one execution key'
            cand clear 'Delete every record and blob in the cache'
            cand verify 'Re-hash every blob; drop records whose blobs are missing or corrupt'
            cand tasks 'The tasks defined in idem.toml: names and descriptions'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'idem;run'= {
            cand -f 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand --file 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand -e 'An environment variable whose value (or absence) is an input. Repeatable'
            cand --env 'An environment variable whose value (or absence) is an input. Repeatable'
            cand -u 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url-content 'A URL whose body is always downloaded and hashed. Repeatable'
            cand --url-header 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable'
            cand --url-timeout 'Time limit for each URL check'
            cand --url-offline 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)'
            cand -o 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --output 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --scope 'A name that separates otherwise identical tasks'
            cand --root 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]'
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --config 'The task file [default: idem.toml at the workspace root]'
            cand --pass-env 'With --strict-env, also pass this variable (not an input). Repeatable'
            cand --trace 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md'
            cand --trace-ignore 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable'
            cand --trace-net 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)'
            cand --key 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay'
            cand --max-runs 'With --key: how many successful runs the key allows'
            cand --key-reuse 'With --key: refuse (deny) or allow reusing a key for another command line'
            cand --ttl 'Do not replay records older than this (30s, 10m, 2h, 7d)'
            cand --stale 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)'
            cand --wait-timeout 'How long to wait for another idem running the same thing before running it too'
            cand --remote 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://'
            cand --remote-read-only 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)'
            cand --remote-timeout 'Time limit for each remote cache operation'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand --clean-outputs 'On restore, make declared output directories exactly the recorded ones'
            cand --no-ignore 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
            cand --stdin 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
            cand --force 'Run and re-record even when a matching record exists'
            cand --cache-failures 'Record non-zero exits too (by default only exit 0 is recorded)'
            cand --strict-env 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
            cand --strict 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
            cand --cache-only 'Replay a matching record, else exit 3 without running anything'
            cand --no-wait 'Do not wait for another idem running the same thing: exit 75 instead'
            cand -v 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --verbose 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --background-refresh 'Internal: refresh a stale record in the background (spawned by idem itself)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;status'= {
            cand -f 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand --file 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand -e 'An environment variable whose value (or absence) is an input. Repeatable'
            cand --env 'An environment variable whose value (or absence) is an input. Repeatable'
            cand -u 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url-content 'A URL whose body is always downloaded and hashed. Repeatable'
            cand --url-header 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable'
            cand --url-timeout 'Time limit for each URL check'
            cand --url-offline 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)'
            cand -o 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --output 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --scope 'A name that separates otherwise identical tasks'
            cand --root 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]'
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --config 'The task file [default: idem.toml at the workspace root]'
            cand --pass-env 'With --strict-env, also pass this variable (not an input). Repeatable'
            cand --trace 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md'
            cand --trace-ignore 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable'
            cand --trace-net 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)'
            cand --key 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay'
            cand --max-runs 'With --key: how many successful runs the key allows'
            cand --key-reuse 'With --key: refuse (deny) or allow reusing a key for another command line'
            cand --ttl 'Do not replay records older than this (30s, 10m, 2h, 7d)'
            cand --stale 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)'
            cand --wait-timeout 'How long to wait for another idem running the same thing before running it too'
            cand --remote 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://'
            cand --remote-read-only 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)'
            cand --remote-timeout 'Time limit for each remote cache operation'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand --clean-outputs 'On restore, make declared output directories exactly the recorded ones'
            cand --no-ignore 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
            cand --stdin 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
            cand --force 'Run and re-record even when a matching record exists'
            cand --cache-failures 'Record non-zero exits too (by default only exit 0 is recorded)'
            cand --strict-env 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
            cand --strict 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
            cand --cache-only 'Replay a matching record, else exit 3 without running anything'
            cand --no-wait 'Do not wait for another idem running the same thing: exit 75 instead'
            cand -v 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --verbose 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --background-refresh 'Internal: refresh a stale record in the background (spawned by idem itself)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;explain'= {
            cand -f 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand --file 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand -e 'An environment variable whose value (or absence) is an input. Repeatable'
            cand --env 'An environment variable whose value (or absence) is an input. Repeatable'
            cand -u 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url-content 'A URL whose body is always downloaded and hashed. Repeatable'
            cand --url-header 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable'
            cand --url-timeout 'Time limit for each URL check'
            cand --url-offline 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)'
            cand -o 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --output 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --scope 'A name that separates otherwise identical tasks'
            cand --root 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]'
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --config 'The task file [default: idem.toml at the workspace root]'
            cand --pass-env 'With --strict-env, also pass this variable (not an input). Repeatable'
            cand --trace 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md'
            cand --trace-ignore 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable'
            cand --trace-net 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)'
            cand --key 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay'
            cand --max-runs 'With --key: how many successful runs the key allows'
            cand --key-reuse 'With --key: refuse (deny) or allow reusing a key for another command line'
            cand --ttl 'Do not replay records older than this (30s, 10m, 2h, 7d)'
            cand --stale 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)'
            cand --wait-timeout 'How long to wait for another idem running the same thing before running it too'
            cand --remote 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://'
            cand --remote-read-only 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)'
            cand --remote-timeout 'Time limit for each remote cache operation'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand --clean-outputs 'On restore, make declared output directories exactly the recorded ones'
            cand --no-ignore 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
            cand --stdin 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
            cand --force 'Run and re-record even when a matching record exists'
            cand --cache-failures 'Record non-zero exits too (by default only exit 0 is recorded)'
            cand --strict-env 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
            cand --strict 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
            cand --cache-only 'Replay a matching record, else exit 3 without running anything'
            cand --no-wait 'Do not wait for another idem running the same thing: exit 75 instead'
            cand -v 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --verbose 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --background-refresh 'Internal: refresh a stale record in the background (spawned by idem itself)'
            cand --json 'Print JSON (see docs/json.md)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;stats'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --json 'Print JSON (see docs/json.md)'
            cand --zero 'Reset the hit/miss counters'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;list'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --cmd 'Only records whose command line contains this text'
            cand --since 'Only records made within this duration (2h, 7d)'
            cand -n 'At most this many records'
            cand --limit 'At most this many records'
            cand --json 'Print JSON (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;show'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --stdout 'Print the recorded stdout bytes'
            cand --stderr 'Print the recorded stderr bytes'
            cand --json 'Print JSON (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;gc'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --max-size 'Evict least-recently-used records until the cache is under this size (5G, 500M)'
            cand --max-age 'Evict records not used for this long (30d)'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;forget'= {
            cand -f 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand --file 'A file, directory (walked recursively) or glob (''src/**/*.c'') whose content is an input; ''!pattern'' excludes. Walks skip what .gitignore/.ignore ignore below the spec''s own directory (see --no-ignore); a path named here is always walked. Repeatable'
            cand -e 'An environment variable whose value (or absence) is an input. Repeatable'
            cand --env 'An environment variable whose value (or absence) is an input. Repeatable'
            cand -u 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable'
            cand --url-content 'A URL whose body is always downloaded and hashed. Repeatable'
            cand --url-header 'Header sent with URL requests (''Name: value''); never stored or printed. Repeatable'
            cand --url-timeout 'Time limit for each URL check'
            cand --url-offline 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)'
            cand -o 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --output 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable'
            cand --scope 'A name that separates otherwise identical tasks'
            cand --root 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]'
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --config 'The task file [default: idem.toml at the workspace root]'
            cand --pass-env 'With --strict-env, also pass this variable (not an input). Repeatable'
            cand --trace 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md'
            cand --trace-ignore 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (''/tmp/**'', ''**/__pycache__/**''). Repeatable'
            cand --trace-net 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)'
            cand --key 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay'
            cand --max-runs 'With --key: how many successful runs the key allows'
            cand --key-reuse 'With --key: refuse (deny) or allow reusing a key for another command line'
            cand --ttl 'Do not replay records older than this (30s, 10m, 2h, 7d)'
            cand --stale 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)'
            cand --wait-timeout 'How long to wait for another idem running the same thing before running it too'
            cand --remote 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://'
            cand --remote-read-only 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)'
            cand --remote-timeout 'Time limit for each remote cache operation'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand --clean-outputs 'On restore, make declared output directories exactly the recorded ones'
            cand --no-ignore 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
            cand --stdin 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
            cand --force 'Run and re-record even when a matching record exists'
            cand --cache-failures 'Record non-zero exits too (by default only exit 0 is recorded)'
            cand --strict-env 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
            cand --strict 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
            cand --cache-only 'Replay a matching record, else exit 3 without running anything'
            cand --no-wait 'Do not wait for another idem running the same thing: exit 75 instead'
            cand -v 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --verbose 'Print one line about what idem did (hit, miss and why) on stderr'
            cand --background-refresh 'Internal: refresh a stale record in the background (spawned by idem itself)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;clear'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand -y 'Delete without asking (required when stdin is not a terminal)'
            cand --yes 'Delete without asking (required when stdin is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;verify'= {
            cand --cache-dir 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]'
            cand --progress 'Progress bars on stderr: auto (terminal only), always, never'
            cand --json 'Print JSON (see docs/json.md)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;tasks'= {
            cand --config 'The task file [default: idem.toml at the workspace root]'
            cand --root 'Workspace root, where idem.toml is looked for'
            cand --json 'Print JSON (see docs/json.md)'
            cand --names 'Print only the names, one per line (what shell completion calls)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'idem;help'= {
            cand run 'Run a command, or replay its recorded outcome when nothing it depends on changed'
            cand status 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing'
            cand explain 'Say which dependencies changed since the last record of this task'
            cand stats 'Hits, misses, time saved and cache size'
            cand list 'Recent records, one line each'
            cand show 'One record whole: dependencies, outputs, stdout and stderr'
            cand gc 'Evict least-recently-used records and delete unreferenced blobs'
            cand forget 'Delete the records of one task, or of one execution key'
            cand clear 'Delete every record and blob in the cache'
            cand verify 'Re-hash every blob; drop records whose blobs are missing or corrupt'
            cand tasks 'The tasks defined in idem.toml: names and descriptions'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'idem;help;run'= {
        }
        &'idem;help;status'= {
        }
        &'idem;help;explain'= {
        }
        &'idem;help;stats'= {
        }
        &'idem;help;list'= {
        }
        &'idem;help;show'= {
        }
        &'idem;help;gc'= {
        }
        &'idem;help;forget'= {
        }
        &'idem;help;clear'= {
        }
        &'idem;help;verify'= {
        }
        &'idem;help;tasks'= {
        }
        &'idem;help;completions'= {
        }
        &'idem;help;help'= {
        }
    ]
    $completions[$command]
}
