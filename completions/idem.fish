# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_idem_global_optspecs
    string join \n h/help V/version
end

function __fish_idem_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_idem_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_idem_using_subcommand
    set -l cmd (__fish_idem_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c idem -n "__fish_idem_needs_command" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_needs_command" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_needs_command" -f -a "run" -d 'Run a command, or replay its recorded outcome when nothing it depends on changed'
complete -c idem -n "__fish_idem_needs_command" -f -a "status" -d 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing'
complete -c idem -n "__fish_idem_needs_command" -f -a "explain" -d 'Say which dependencies changed since the last record of this task'
complete -c idem -n "__fish_idem_needs_command" -f -a "stats" -d 'Hits, misses, time saved and cache size'
complete -c idem -n "__fish_idem_needs_command" -f -a "list" -d 'Recent records, one line each'
complete -c idem -n "__fish_idem_needs_command" -f -a "show" -d 'One record whole: dependencies, outputs, stdout and stderr'
complete -c idem -n "__fish_idem_needs_command" -f -a "gc" -d 'Evict least-recently-used records and delete unreferenced blobs'
complete -c idem -n "__fish_idem_needs_command" -f -a "forget" -d 'Delete the records of one task, or of one execution key'
complete -c idem -n "__fish_idem_needs_command" -f -a "clear" -d 'Delete every record and blob in the cache'
complete -c idem -n "__fish_idem_needs_command" -f -a "verify" -d 'Re-hash every blob; drop records whose blobs are missing or corrupt'
complete -c idem -n "__fish_idem_needs_command" -f -a "tasks" -d 'The tasks defined in idem.toml: names and descriptions'
complete -c idem -n "__fish_idem_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c idem -n "__fish_idem_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c idem -n "__fish_idem_using_subcommand run" -s f -l file -d 'A file, directory (walked recursively) or glob (\'src/**/*.c\') whose content is an input; \'!pattern\' excludes. Walks skip what .gitignore/.ignore ignore below the spec\'s own directory (see --no-ignore); a path named here is always walked. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -s e -l env -d 'An environment variable whose value (or absence) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -s u -l url -d 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l url-content -d 'A URL whose body is always downloaded and hashed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l url-header -d 'Header sent with URL requests (\'Name: value\'); never stored or printed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l url-timeout -d 'Time limit for each URL check' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l url-offline -d 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)' -r -f -a "run\t''
hit\t''"
complete -c idem -n "__fish_idem_using_subcommand run" -s o -l output -d 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l scope -d 'A name that separates otherwise identical tasks' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l root -d 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]' -r -F
complete -c idem -n "__fish_idem_using_subcommand run" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand run" -l config -d 'The task file [default: idem.toml at the workspace root]' -r -F
complete -c idem -n "__fish_idem_using_subcommand run" -l pass-env -d 'With --strict-env, also pass this variable (not an input). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l trace -d 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md' -r -f -a "record\t'Traced inputs are the dependencies (no -f needed)'
check\t'Declared dependencies as without --trace; undeclared workspace inputs are listed'"
complete -c idem -n "__fish_idem_using_subcommand run" -l trace-ignore -d 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (\'/tmp/**\', \'**/__pycache__/**\'). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l trace-net -d 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand run" -l key -d 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l max-runs -d 'With --key: how many successful runs the key allows' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l key-reuse -d 'With --key: refuse (deny) or allow reusing a key for another command line' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand run" -l ttl -d 'Do not replay records older than this (30s, 10m, 2h, 7d)' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l stale -d 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l wait-timeout -d 'How long to wait for another idem running the same thing before running it too' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l remote -d 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l remote-read-only -d 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l remote-timeout -d 'Time limit for each remote cache operation' -r
complete -c idem -n "__fish_idem_using_subcommand run" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand run" -l clean-outputs -d 'On restore, make declared output directories exactly the recorded ones'
complete -c idem -n "__fish_idem_using_subcommand run" -l no-ignore -d 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
complete -c idem -n "__fish_idem_using_subcommand run" -l stdin -d 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
complete -c idem -n "__fish_idem_using_subcommand run" -l force -d 'Run and re-record even when a matching record exists'
complete -c idem -n "__fish_idem_using_subcommand run" -l cache-failures -d 'Record non-zero exits too (by default only exit 0 is recorded)'
complete -c idem -n "__fish_idem_using_subcommand run" -l strict-env -d 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
complete -c idem -n "__fish_idem_using_subcommand run" -l strict -d 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
complete -c idem -n "__fish_idem_using_subcommand run" -l cache-only -d 'Replay a matching record, else exit 3 without running anything'
complete -c idem -n "__fish_idem_using_subcommand run" -l no-wait -d 'Do not wait for another idem running the same thing: exit 75 instead'
complete -c idem -n "__fish_idem_using_subcommand run" -s v -l verbose -d 'Print one line about what idem did (hit, miss and why) on stderr'
complete -c idem -n "__fish_idem_using_subcommand run" -l background-refresh -d 'Internal: refresh a stale record in the background (spawned by idem itself)'
complete -c idem -n "__fish_idem_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idem -n "__fish_idem_using_subcommand run" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand status" -s f -l file -d 'A file, directory (walked recursively) or glob (\'src/**/*.c\') whose content is an input; \'!pattern\' excludes. Walks skip what .gitignore/.ignore ignore below the spec\'s own directory (see --no-ignore); a path named here is always walked. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -s e -l env -d 'An environment variable whose value (or absence) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -s u -l url -d 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l url-content -d 'A URL whose body is always downloaded and hashed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l url-header -d 'Header sent with URL requests (\'Name: value\'); never stored or printed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l url-timeout -d 'Time limit for each URL check' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l url-offline -d 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)' -r -f -a "run\t''
hit\t''"
complete -c idem -n "__fish_idem_using_subcommand status" -s o -l output -d 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l scope -d 'A name that separates otherwise identical tasks' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l root -d 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]' -r -F
complete -c idem -n "__fish_idem_using_subcommand status" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand status" -l config -d 'The task file [default: idem.toml at the workspace root]' -r -F
complete -c idem -n "__fish_idem_using_subcommand status" -l pass-env -d 'With --strict-env, also pass this variable (not an input). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l trace -d 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md' -r -f -a "record\t'Traced inputs are the dependencies (no -f needed)'
check\t'Declared dependencies as without --trace; undeclared workspace inputs are listed'"
complete -c idem -n "__fish_idem_using_subcommand status" -l trace-ignore -d 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (\'/tmp/**\', \'**/__pycache__/**\'). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l trace-net -d 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand status" -l key -d 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l max-runs -d 'With --key: how many successful runs the key allows' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l key-reuse -d 'With --key: refuse (deny) or allow reusing a key for another command line' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand status" -l ttl -d 'Do not replay records older than this (30s, 10m, 2h, 7d)' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l stale -d 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l wait-timeout -d 'How long to wait for another idem running the same thing before running it too' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l remote -d 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l remote-read-only -d 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l remote-timeout -d 'Time limit for each remote cache operation' -r
complete -c idem -n "__fish_idem_using_subcommand status" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand status" -l clean-outputs -d 'On restore, make declared output directories exactly the recorded ones'
complete -c idem -n "__fish_idem_using_subcommand status" -l no-ignore -d 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
complete -c idem -n "__fish_idem_using_subcommand status" -l stdin -d 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
complete -c idem -n "__fish_idem_using_subcommand status" -l force -d 'Run and re-record even when a matching record exists'
complete -c idem -n "__fish_idem_using_subcommand status" -l cache-failures -d 'Record non-zero exits too (by default only exit 0 is recorded)'
complete -c idem -n "__fish_idem_using_subcommand status" -l strict-env -d 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
complete -c idem -n "__fish_idem_using_subcommand status" -l strict -d 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
complete -c idem -n "__fish_idem_using_subcommand status" -l cache-only -d 'Replay a matching record, else exit 3 without running anything'
complete -c idem -n "__fish_idem_using_subcommand status" -l no-wait -d 'Do not wait for another idem running the same thing: exit 75 instead'
complete -c idem -n "__fish_idem_using_subcommand status" -s v -l verbose -d 'Print one line about what idem did (hit, miss and why) on stderr'
complete -c idem -n "__fish_idem_using_subcommand status" -l background-refresh -d 'Internal: refresh a stale record in the background (spawned by idem itself)'
complete -c idem -n "__fish_idem_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idem -n "__fish_idem_using_subcommand status" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand explain" -s f -l file -d 'A file, directory (walked recursively) or glob (\'src/**/*.c\') whose content is an input; \'!pattern\' excludes. Walks skip what .gitignore/.ignore ignore below the spec\'s own directory (see --no-ignore); a path named here is always walked. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -s e -l env -d 'An environment variable whose value (or absence) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -s u -l url -d 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l url-content -d 'A URL whose body is always downloaded and hashed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l url-header -d 'Header sent with URL requests (\'Name: value\'); never stored or printed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l url-timeout -d 'Time limit for each URL check' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l url-offline -d 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)' -r -f -a "run\t''
hit\t''"
complete -c idem -n "__fish_idem_using_subcommand explain" -s o -l output -d 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l scope -d 'A name that separates otherwise identical tasks' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l root -d 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]' -r -F
complete -c idem -n "__fish_idem_using_subcommand explain" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand explain" -l config -d 'The task file [default: idem.toml at the workspace root]' -r -F
complete -c idem -n "__fish_idem_using_subcommand explain" -l pass-env -d 'With --strict-env, also pass this variable (not an input). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l trace -d 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md' -r -f -a "record\t'Traced inputs are the dependencies (no -f needed)'
check\t'Declared dependencies as without --trace; undeclared workspace inputs are listed'"
complete -c idem -n "__fish_idem_using_subcommand explain" -l trace-ignore -d 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (\'/tmp/**\', \'**/__pycache__/**\'). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l trace-net -d 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand explain" -l key -d 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l max-runs -d 'With --key: how many successful runs the key allows' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l key-reuse -d 'With --key: refuse (deny) or allow reusing a key for another command line' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand explain" -l ttl -d 'Do not replay records older than this (30s, 10m, 2h, 7d)' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l stale -d 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l wait-timeout -d 'How long to wait for another idem running the same thing before running it too' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l remote -d 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l remote-read-only -d 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l remote-timeout -d 'Time limit for each remote cache operation' -r
complete -c idem -n "__fish_idem_using_subcommand explain" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand explain" -l clean-outputs -d 'On restore, make declared output directories exactly the recorded ones'
complete -c idem -n "__fish_idem_using_subcommand explain" -l no-ignore -d 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
complete -c idem -n "__fish_idem_using_subcommand explain" -l stdin -d 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
complete -c idem -n "__fish_idem_using_subcommand explain" -l force -d 'Run and re-record even when a matching record exists'
complete -c idem -n "__fish_idem_using_subcommand explain" -l cache-failures -d 'Record non-zero exits too (by default only exit 0 is recorded)'
complete -c idem -n "__fish_idem_using_subcommand explain" -l strict-env -d 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
complete -c idem -n "__fish_idem_using_subcommand explain" -l strict -d 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
complete -c idem -n "__fish_idem_using_subcommand explain" -l cache-only -d 'Replay a matching record, else exit 3 without running anything'
complete -c idem -n "__fish_idem_using_subcommand explain" -l no-wait -d 'Do not wait for another idem running the same thing: exit 75 instead'
complete -c idem -n "__fish_idem_using_subcommand explain" -s v -l verbose -d 'Print one line about what idem did (hit, miss and why) on stderr'
complete -c idem -n "__fish_idem_using_subcommand explain" -l background-refresh -d 'Internal: refresh a stale record in the background (spawned by idem itself)'
complete -c idem -n "__fish_idem_using_subcommand explain" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idem -n "__fish_idem_using_subcommand explain" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand stats" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand stats" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand stats" -l zero -d 'Reset the hit/miss counters'
complete -c idem -n "__fish_idem_using_subcommand stats" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand stats" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand list" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand list" -l cmd -d 'Only records whose command line contains this text' -r
complete -c idem -n "__fish_idem_using_subcommand list" -l since -d 'Only records made within this duration (2h, 7d)' -r
complete -c idem -n "__fish_idem_using_subcommand list" -s n -l limit -d 'At most this many records' -r
complete -c idem -n "__fish_idem_using_subcommand list" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand list" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand list" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand show" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand show" -l stdout -d 'Print the recorded stdout bytes'
complete -c idem -n "__fish_idem_using_subcommand show" -l stderr -d 'Print the recorded stderr bytes'
complete -c idem -n "__fish_idem_using_subcommand show" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand show" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand show" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand gc" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand gc" -l max-size -d 'Evict least-recently-used records until the cache is under this size (5G, 500M)' -r
complete -c idem -n "__fish_idem_using_subcommand gc" -l max-age -d 'Evict records not used for this long (30d)' -r
complete -c idem -n "__fish_idem_using_subcommand gc" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand gc" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand gc" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand forget" -s f -l file -d 'A file, directory (walked recursively) or glob (\'src/**/*.c\') whose content is an input; \'!pattern\' excludes. Walks skip what .gitignore/.ignore ignore below the spec\'s own directory (see --no-ignore); a path named here is always walked. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -s e -l env -d 'An environment variable whose value (or absence) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -s u -l url -d 'A URL whose current state (ETag, Last-Modified+length, else body hash) is an input. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l url-content -d 'A URL whose body is always downloaded and hashed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l url-header -d 'Header sent with URL requests (\'Name: value\'); never stored or printed. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l url-timeout -d 'Time limit for each URL check' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l url-offline -d 'When a URL cannot be checked: run the command (default) or trust the last recorded state (hit)' -r -f -a "run\t''
hit\t''"
complete -c idem -n "__fish_idem_using_subcommand forget" -s o -l output -d 'A file, directory or glob the command produces; stored on success and restored on a hit. Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l scope -d 'A name that separates otherwise identical tasks' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l root -d 'Workspace root; paths inside it enter keys relative to it [default: nearest ancestor holding .git, else the working directory]' -r -F
complete -c idem -n "__fish_idem_using_subcommand forget" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand forget" -l config -d 'The task file [default: idem.toml at the workspace root]' -r -F
complete -c idem -n "__fish_idem_using_subcommand forget" -l pass-env -d 'With --strict-env, also pass this variable (not an input). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l trace -d 'Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace): every file it reads, probes, finds absent, lists or executes becomes an input, and files it creates in the workspace are outputs. `--trace` records (the same as `--trace=record`); `--trace=check` runs with the declared inputs only and lists the workspace inputs no -f covers. The environment is not traceable: declare variables with -e, and use --strict-env for hermetic steps. See docs/trace.md' -r -f -a "record\t'Traced inputs are the dependencies (no -f needed)'
check\t'Declared dependencies as without --trace; undeclared workspace inputs are listed'"
complete -c idem -n "__fish_idem_using_subcommand forget" -l trace-ignore -d 'With --trace: a glob of paths that are never traced inputs or outputs, matched on the absolute path and on the path relative to the workspace root (\'/tmp/**\', \'**/__pycache__/**\'). Repeatable' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l trace-net -d 'With --trace: a command that talks to the network (an inet socket) is run but not recorded (deny), or recorded anyway (allow: declare what it fetches with -u)' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand forget" -l key -d 'Execution key: the command succeeds at most once (or --max-runs) per key, whatever its inputs; later calls replay' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l max-runs -d 'With --key: how many successful runs the key allows' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l key-reuse -d 'With --key: refuse (deny) or allow reusing a key for another command line' -r -f -a "deny\t''
allow\t''"
complete -c idem -n "__fish_idem_using_subcommand forget" -l ttl -d 'Do not replay records older than this (30s, 10m, 2h, 7d)' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l stale -d 'Past this age, replay but refresh the record in the background: the refresh runs the command again after idem has exited, and rewrites its -o outputs when it records (use --ttl where a later step reads them at once)' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l wait-timeout -d 'How long to wait for another idem running the same thing before running it too' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l remote -d 'Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l remote-read-only -d 'Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l remote-timeout -d 'Time limit for each remote cache operation' -r
complete -c idem -n "__fish_idem_using_subcommand forget" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand forget" -l clean-outputs -d 'On restore, make declared output directories exactly the recorded ones'
complete -c idem -n "__fish_idem_using_subcommand forget" -l no-ignore -d 'Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks'
complete -c idem -n "__fish_idem_using_subcommand forget" -l stdin -d 'Read stdin fully, make its hash an input, and feed the same bytes to the command'
complete -c idem -n "__fish_idem_using_subcommand forget" -l force -d 'Run and re-record even when a matching record exists'
complete -c idem -n "__fish_idem_using_subcommand forget" -l cache-failures -d 'Record non-zero exits too (by default only exit 0 is recorded)'
complete -c idem -n "__fish_idem_using_subcommand forget" -l strict-env -d 'Run the command with only the declared -e variables, PATH, HOME and --pass-env'
complete -c idem -n "__fish_idem_using_subcommand forget" -l strict -d 'With --trace=check: undeclared inputs make idem exit 5 after a successful run (for CI), instead of only listing them'
complete -c idem -n "__fish_idem_using_subcommand forget" -l cache-only -d 'Replay a matching record, else exit 3 without running anything'
complete -c idem -n "__fish_idem_using_subcommand forget" -l no-wait -d 'Do not wait for another idem running the same thing: exit 75 instead'
complete -c idem -n "__fish_idem_using_subcommand forget" -s v -l verbose -d 'Print one line about what idem did (hit, miss and why) on stderr'
complete -c idem -n "__fish_idem_using_subcommand forget" -l background-refresh -d 'Internal: refresh a stale record in the background (spawned by idem itself)'
complete -c idem -n "__fish_idem_using_subcommand forget" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idem -n "__fish_idem_using_subcommand forget" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand clear" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand clear" -s y -l yes -d 'Delete without asking (required when stdin is not a terminal)'
complete -c idem -n "__fish_idem_using_subcommand clear" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand clear" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand verify" -l cache-dir -d 'Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]' -r -F
complete -c idem -n "__fish_idem_using_subcommand verify" -l progress -d 'Progress bars on stderr: auto (terminal only), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c idem -n "__fish_idem_using_subcommand verify" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand verify" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand verify" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand tasks" -l config -d 'The task file [default: idem.toml at the workspace root]' -r -F
complete -c idem -n "__fish_idem_using_subcommand tasks" -l root -d 'Workspace root, where idem.toml is looked for' -r -F
complete -c idem -n "__fish_idem_using_subcommand tasks" -l json -d 'Print JSON (see docs/json.md)'
complete -c idem -n "__fish_idem_using_subcommand tasks" -l names -d 'Print only the names, one per line (what shell completion calls)'
complete -c idem -n "__fish_idem_using_subcommand tasks" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand tasks" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand completions" -s h -l help -d 'Print help'
complete -c idem -n "__fish_idem_using_subcommand completions" -s V -l version -d 'Print version'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "run" -d 'Run a command, or replay its recorded outcome when nothing it depends on changed'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "status" -d 'Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "explain" -d 'Say which dependencies changed since the last record of this task'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "stats" -d 'Hits, misses, time saved and cache size'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "list" -d 'Recent records, one line each'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "show" -d 'One record whole: dependencies, outputs, stdout and stderr'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "gc" -d 'Evict least-recently-used records and delete unreferenced blobs'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "forget" -d 'Delete the records of one task, or of one execution key'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "clear" -d 'Delete every record and blob in the cache'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "verify" -d 'Re-hash every blob; drop records whose blobs are missing or corrupt'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "tasks" -d 'The tasks defined in idem.toml: names and descriptions'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c idem -n "__fish_idem_using_subcommand help; and not __fish_seen_subcommand_from run status explain stats list show gc forget clear verify tasks completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

# Task names from idem.toml (`idem tasks --names`).
complete -c idem -n "__fish_idem_using_subcommand run; and not contains -- -- (commandline -opc)" -a "((commandline -opc)[1] tasks --names 2>/dev/null)" -d task
complete -c idem -n "__fish_idem_using_subcommand status; and not contains -- -- (commandline -opc)" -a "((commandline -opc)[1] tasks --names 2>/dev/null)" -d task
complete -c idem -n "__fish_idem_using_subcommand explain; and not contains -- -- (commandline -opc)" -a "((commandline -opc)[1] tasks --names 2>/dev/null)" -d task
complete -c idem -n "__fish_idem_using_subcommand forget; and not contains -- -- (commandline -opc)" -a "((commandline -opc)[1] tasks --names 2>/dev/null)" -d task
