//! Go binary and image inspection: build info, pclntab symbols, FIPS family classification.
