mod glob_fast_paths {
    use super::super::{glob, glob_general};
    use proptest::prelude::*;

    #[test]
    fn shapes_profiles_use() {
        assert!(glob("*cilium/cilium", "quay.io/cilium/cilium"));
        assert!(!glob("*cilium/cilium", "quay.io/cilium/operator"));
        assert!(glob("otelcol*", "otelcol-contrib"));
        assert!(glob("*fluentd*", "docker.io/fluent/fluentd-kubernetes-daemonset"));
        assert!(glob("kube-proxy", "kube-proxy"));
        assert!(!glob("kube-proxy", "kube-proxy2"));
        assert!(glob("*", ""));
        assert!(glob("**", "x"));
        assert!(glob("a*b?c", "axxbyc"));
    }

    proptest! {
        /// The fast paths agree with the general matcher.
        #[test]
        fn fast_paths_agree(pattern in "[ab*?]{0,6}", text in "[ab]{0,8}") {
            prop_assert_eq!(glob(&pattern, &text), glob_general(&pattern, &text));
        }
    }
}
