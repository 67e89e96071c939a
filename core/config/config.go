// Package config loads a command's settings from, lowest precedence first,
// a TOML config file, environment variables and command-line flags. The
// keys are the flag names everywhere: "origin-rate-limit" in the file is
// PREFIX_ORIGIN_RATE_LIMIT in the environment and --origin-rate-limit on
// the command line.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// delim separates nested keys; flag names never contain it.
const delim = "."

// Load merges the config file at path, the environment variables starting
// with envPrefix and the flags of fs (already parsed) into one koanf
// instance keyed by flag name. Flags override the environment, which
// overrides the file; flag defaults apply only to keys set nowhere else.
//
// A missing file is an error only when pathExplicit (the user named it).
// Keys that name no flag are an error in the file and ignored in the
// environment (another command may share the prefix). List flags take
// comma-separated values from the environment; values are checked against
// the flag's type.
func Load(fs *pflag.FlagSet, path string, pathExplicit bool, envPrefix string) (*koanf.Koanf, error) {
	k := koanf.New(delim)
	if path != "" {
		err := k.Load(file.Provider(path), toml.Parser())
		switch {
		case err != nil && !pathExplicit && isNotExist(err):
		case err != nil:
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for _, key := range k.Keys() {
			if fs.Lookup(key) == nil {
				return nil, fmt.Errorf("config file %s: unknown key %q", path, key)
			}
		}
	}
	if envPrefix != "" {
		err := k.Load(env.Provider(delim, env.Opt{
			Prefix: envPrefix,
			TransformFunc: func(name, value string) (string, any) {
				key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, envPrefix)), "_", "-")
				f := fs.Lookup(key)
				if f == nil {
					return "", nil
				}
				if isList(f) {
					var list []any
					for _, v := range strings.Split(value, ",") {
						if v = strings.TrimSpace(v); v != "" {
							list = append(list, v)
						}
					}
					return key, list
				}
				return key, value
			},
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("environment %s*: %w", envPrefix, err)
		}
	}
	if err := k.Load(posflag.Provider(fs, delim, k), nil); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	for _, key := range k.Keys() {
		if f := fs.Lookup(key); f != nil {
			if err := checkType(f, k.Get(key)); err != nil {
				return nil, fmt.Errorf("setting %q: %w", key, err)
			}
		}
	}
	return k, nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist)
}

func isList(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

// checkType reports a value that the koanf getters would silently turn
// into a zero.
func checkType(f *pflag.Flag, v any) error {
	if isList(f) {
		switch v.(type) {
		case []any, []string:
			return nil
		}
		if t := f.Value.Type(); t == "stringSlice" || t == "stringArray" {
			return fmt.Errorf("want a list of strings, got %v", v)
		}
		return nil
	}
	s := fmt.Sprint(v)
	var err error
	switch t := f.Value.Type(); {
	case t == "bool":
		_, err = strconv.ParseBool(s)
	case t == "duration":
		if _, isInt := v.(int64); !isInt {
			_, err = time.ParseDuration(s)
		}
	case strings.HasPrefix(t, "int"):
		_, err = strconv.ParseInt(s, 10, 64)
	case strings.HasPrefix(t, "uint"):
		_, err = strconv.ParseUint(s, 10, 64)
	case t == "float32" || t == "float64":
		_, err = strconv.ParseFloat(s, 64)
	case t == "ip":
		if net.ParseIP(s) == nil {
			err = fmt.Errorf("invalid IP address %q", s)
		}
	case t == "string":
		if _, ok := v.(string); !ok {
			err = fmt.Errorf("want a string, got %v", v)
		}
	}
	return err
}
